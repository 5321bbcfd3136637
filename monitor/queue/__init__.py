"""The pharmacist queue: a worklist over the alerts topic, with acknowledge and snooze.

- :mod:`.worklist` the read model (pure): latest record per alert, actions, statuses.
- :mod:`.auth` users (scrypt hashes), the API token, login sessions.
- :mod:`.web` the aiohttp application: the page, the JSON API, OpenAPI, /metrics.
- :mod:`.service` Kafka in and out (aiokafka): rebuilds the worklist from the topics.
"""
