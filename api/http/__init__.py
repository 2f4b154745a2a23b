"""HTTP plumbing shared by every route: the connection edge, middleware, request bodies, JSON and
Server-Sent Events responses, and cancelling work when a client disconnects."""
