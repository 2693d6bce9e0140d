"""Files: tus resumable uploads, small multipart uploads, checks on the bytes, thumbnails, downloads.

Below the message core (messages refer to uploads by id); imports only rooms, accounts and core.
"""
