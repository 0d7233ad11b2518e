"""Kafka client options derived from settings, shared by every producer, consumer and admin client."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from pipeline.settings import KafkaSettings


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments understood by every aiokafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": kafka.request_timeout_ms,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "SCRAM-SHA-512"
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """A verifying TLS context trusting the configured CA (or the system store)."""
    return ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)


async def cluster_answers(kafka: KafkaSettings, timeout_s: float = 5.0) -> bool:
    """True when the cluster answers a metadata request within the timeout."""
    if not await _any_bootstrap_accepts(kafka.bootstrap_servers, timeout_s):
        return False
    options = client_options(kafka) | {"request_timeout_ms": int(timeout_s * 1000)}
    admin = AIOKafkaAdminClient(**options)
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.list_topics(), timeout_s)
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return True


async def _any_bootstrap_accepts(bootstrap_servers: str, timeout_s: float) -> bool:
    """A cheap TCP probe first, so a stopped broker is reported without the client's retry noise."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]"), int(port)), timeout_s
            )
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True
    return False


async def topic_partitions(consumer: Any, topic: str) -> set[int]:
    """The topic's partition numbers as the consumer's cluster metadata knows them (refreshed if unknown)."""
    known: set[int] | None = consumer.partitions_for_topic(topic)
    if known:
        return known
    # aiokafka offers no public metadata refresh; a just-created topic is otherwise unknown for a while.
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()
