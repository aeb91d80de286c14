"""Fan-out inside a server process: the relay between processes, the hub, the outbox."""
