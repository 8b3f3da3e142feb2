"""JSON spliced from parts encoded once reads exactly as the model encoded whole."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hallkit.contracts.hall import CommandReply

from hallkit.config import HallConfig
from hallkit.encoding import dump_spliced
from hallkit.queue.models import CallNext, Complete, Outcome, TakeTicket
from hallkit.store.durable import Answer, DurableQueue
from hallkit.testing import MONDAY


def test_the_stored_outcome_is_the_outcome_encoded_whole(small_config: HallConfig, tmp_path) -> None:
    queue = DurableQueue(small_config, tmp_path / "q.sqlite3")
    commands = [TakeTicket(service_id="social"), TakeTicket(service_id="pension"), CallNext(window=1),
                Complete(window=1)]
    answers = [queue.answer_batch([c], MONDAY + timedelta(minutes=i))[0] for i, c in enumerate(commands)]
    for answer in answers:
        assert isinstance(answer, Answer)
        assert answer.json == answer.outcome.model_dump_json()
        assert Outcome.model_validate_json(answer.json) == answer.outcome
    stored = queue.store.replies_for([c.request_id for c in commands])
    assert [stored[c.request_id][1] for c in commands] == [a.json for a in answers]


@pytest.mark.parametrize("request_id", ["r1", 'tricky"outcome":null', '"outcome":null}'])
def test_a_reply_spliced_reads_as_the_reply_encoded_whole(small_config: HallConfig, tmp_path, request_id: str) -> None:
    outcome = DurableQueue(small_config, tmp_path / "q.sqlite3").execute(TakeTicket(service_id="social"), MONDAY)
    whole = CommandReply(device="hub", request_id=request_id, ok=True, outcome=outcome)
    shell = whole.model_copy(update={"outcome": None})
    assert dump_spliced(shell, {"outcome": outcome.model_dump_json()}) == whole.model_dump_json()


def test_splicing_into_a_field_without_a_placeholder_is_refused() -> None:
    reply = CommandReply(device="hub", request_id="r1", ok=True)
    with pytest.raises(ValueError, match="no empty placeholder"):
        dump_spliced(reply, {"request_id": '"r2"'})
