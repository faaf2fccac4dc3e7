"""The bank tasks (intent, credit, fraud, chat) and what differs between them."""
