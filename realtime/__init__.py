"""Real time: the room WebSocket, the per-process fan-out hub and its ticker, presence, the frames.

Above the message core: writes go through messaging.services, and message changes reach sockets
through messaging.signals (realtime/publishing.py) and the one channel-layer door, core.broadcast.
"""
