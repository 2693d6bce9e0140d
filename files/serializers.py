"""The documented shapes of files' requests and answers (built in files/selectors.py)."""

from __future__ import annotations

from rest_framework import serializers


class AttachmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    content_type = serializers.CharField()
    url = serializers.CharField()
    thumbnail_url = serializers.CharField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)


class FileUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
