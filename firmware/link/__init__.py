"""The supervisor link: MQTT client, credentials, durable outbox, envelope, commands."""
