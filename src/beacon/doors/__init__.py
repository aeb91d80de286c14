"""Front doors: the ways a client connects. Each is a hub sink through an outbox."""
