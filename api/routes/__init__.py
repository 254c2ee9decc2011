"""The API's routers: tasks, workflows, webhooks, and the public meta routes."""
