"""The HTTP edge: accepts Zoho webhooks and writes them to Kafka before answering."""
