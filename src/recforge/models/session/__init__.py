"""Session-based recommenders: next-item models trained on anonymous sessions."""
