"""imagecore: the domain of an image service.

Models, validation, list queries, pagination cursors, the ports the outside world implements and
the use cases. Nothing here knows about HTTP, AWS, SQLite or image codecs.
"""
