"""Clients of a cluster that requires SASL_SSL with SCRAM-SHA-512, against a real broker doing it."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from pipeline.ops.broker import LocalBroker
from pipeline.ops.kafka import client_options, cluster_answers
from pipeline.settings import KafkaSettings
from tests.fixtures_secure_broker import SecureBroker

pytestmark = pytest.mark.integration

# A refused client must fail well before its request timeout (40s by default) would end it.
REFUSAL_LIMIT_S = 10.0


async def _create_topic(kafka: KafkaSettings) -> str:
    topic = f"sasl-{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def _connect(kafka: KafkaSettings) -> None:
    """Start a producer (its first metadata request is made there) and stop it again."""
    producer = AIOKafkaProducer(**client_options(kafka))
    try:
        await asyncio.wait_for(producer.start(), REFUSAL_LIMIT_S)
    finally:
        await producer.stop()


async def _refused(kafka: KafkaSettings, caplog: pytest.LogCaptureFixture) -> str:
    """Connect, expect refusal within the limit, and return what aiokafka logged as the cause."""
    caplog.set_level(logging.ERROR, logger="aiokafka")
    started = time.monotonic()
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        await _connect(kafka)
    assert time.monotonic() - started < REFUSAL_LIMIT_S
    return caplog.text


async def test_topic_produce_and_consume_over_sasl_ssl(secure_broker: SecureBroker) -> None:
    secure = secure_broker.sasl_ssl
    assert secure.security_protocol == "SASL_SSL"
    assert secure.bootstrap_servers == secure_broker.broker.secure_bootstrap
    topic = await _create_topic(secure)

    producer = AIOKafkaProducer(**client_options(secure))
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over tls", key=b"k1")
    finally:
        await producer.stop()
    # A consumer group, so the group coordinator is reached over SASL_SSL too.
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(secure),
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()

    assert (record.key, record.value) == (b"k1", b"over tls")
    # The same cluster behind the plaintext listener.
    admin = AIOKafkaAdminClient(**client_options(secure_broker.plaintext))
    await admin.start()
    try:
        assert topic in await admin.list_topics()
    finally:
        await admin.close()


async def test_wrong_password_is_refused_by_authentication(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = secure_broker.sasl_ssl.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    cause = await _refused(wrong, caplog)
    assert "SaslAuthenticationFailed" in cause
    assert "invalid credentials" in cause


async def test_unknown_user_is_refused_by_authentication(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = secure_broker.sasl_ssl.model_copy(update={"sasl_username": "someone-else"})
    assert "SaslAuthenticationFailed" in await _refused(stranger, caplog)


async def test_client_without_tls_is_refused(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    cleartext = secure_broker.sasl_ssl.model_copy(update={"security_protocol": "SASL_PLAINTEXT"})
    cause = await _refused(cleartext, caplog)
    assert "SaslAuthenticationFailed" not in cause, "no credentials may be checked without TLS"


async def test_client_not_trusting_the_ca_fails_tls_verification(
    secure_broker: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    # No CA file: the system trust store, which does not hold the broker's private CA.
    untrusting = secure_broker.sasl_ssl.model_copy(update={"ssl_cafile": None})
    assert "CERTIFICATE_VERIFY_FAILED" in await _refused(untrusting, caplog)


async def test_cluster_answers_only_to_valid_credentials(secure_broker: SecureBroker) -> None:
    wrong = secure_broker.sasl_ssl.model_copy(update={"sasl_password": SecretStr("not-the-password")})

    assert await cluster_answers(secure_broker.sasl_ssl)
    assert await cluster_answers(secure_broker.plaintext)
    assert not await cluster_answers(wrong, timeout_s=REFUSAL_LIMIT_S)


def test_users_survive_a_restart_without_being_added_again(secure_broker: SecureBroker) -> None:
    """Kept last in this file: it restarts the session's secure broker (which is up again afterwards)."""
    settings = secure_broker.broker.settings
    without_users = LocalBroker(settings.model_copy(update={"scram_users": {}}))
    assert secure_broker.broker.stop()
    assert not asyncio.run(cluster_answers(secure_broker.plaintext, timeout_s=2.0))

    without_users.start()

    assert asyncio.run(cluster_answers(secure_broker.sasl_ssl, timeout_s=10.0))
