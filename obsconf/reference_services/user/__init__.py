"""User service: users in PostgreSQL, `user.created` published through a transactional outbox."""
