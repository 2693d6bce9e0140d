"""What rooms announce to the apps above it, which it does not import."""

from django.dispatch import Signal

# Sent inside the transaction that adds someone to a room on another member's initiative, with
# `membership` (the new one) and `actor_id`. notifications/receivers.py turns it into an invite
# notice, in the same transaction.
member_added = Signal()

# Sent inside the transaction that moves a member's read marker forward, with `room_id`, `user_id`
# and `seq`: notifications/receivers.py marks the notices of what was read (DMs, posts) read.
read_marker_moved = Signal()
