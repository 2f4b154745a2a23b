"""Stored conversations: history kept in the database, replies generated from it."""
