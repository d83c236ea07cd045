"""Any reply the model API could send becomes a mind output: never an exception, never a crash."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import TransientError
from tests.fakes.anthropic_server import FakeAnthropic, Received, Reply, json_reply
from tests.unit.brain.cases import BrainMaker, good_view, make_context

views = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=15,
)


def _mangled(_: Any) -> st.SearchStrategy[Any]:
    """The good view with one field replaced by anything, or dropped, or extra keys added."""
    view = good_view()
    keys = st.sampled_from(sorted(view))
    return st.one_of(
        st.tuples(keys, views).map(lambda kv: {**view, kv[0]: kv[1]}),
        keys.map(lambda k: {x: v for x, v in view.items() if x != k}),
        st.dictionaries(st.text(max_size=8), views, max_size=3).map(
            lambda extra: {**view, **extra}
        ),
    )


replies = st.one_of(
    views.map(json.dumps),
    st.text(max_size=200),
    st.just(good_view()).flatmap(_mangled).map(json.dumps),
)
_keys = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=replies)
def test_any_model_reply_becomes_a_mind_output(
    fake: FakeAnthropic, make_brain: BrainMaker, text: str
) -> None:
    """Whatever text the model answers (and answers again when asked to repair), the mind
    returns an output that names its state and, if not ok, why."""

    def answer(_request: Received) -> Reply:
        return json_reply(text)

    fake.respond_with(answer)
    context = make_context(cycle_key=f"prop-{next(_keys)}")
    try:
        output = make_brain().think("macro", context)
    except TransientError:
        return  # a model error the task retries; not a crash
    assert output.mind == "macro"
    assert output.status in ("ok", "abstained", "absent")
    if output.status != "ok":
        assert output.reason
