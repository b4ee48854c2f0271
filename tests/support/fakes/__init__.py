"""Fake counterparts on 127.0.0.1: real HTTP servers that check auth and shapes and fail on purpose."""
