"""Use cases shared by the HTTP API, the CLI, webhooks, schedules and the simulator."""
