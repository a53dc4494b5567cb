"""A contract suite for the parts of LlamaIndex's LLM interface that LlamaIndex itself relies on.

LlamaIndex has no standard LLM test suite; this one is modelled on what llama-index-core's own LLM tests
check (``tests/llms/test_callbacks.py``, ``test_custom.py``, ``test_function_calling.py``,
``test_instrumentation_events.py``, ``test_structured_llm.py``) and on what its engines, agents and programs
call: chat / complete in four forms with the callback decorators' prompt handling, cumulative streaming,
legacy callbacks and instrumentation events, ``to_payload`` without secrets, system prompts and message roles on
the wire, image blocks, tool calling (``chat_with_tools``, ``get_tool_calls_from_response``, streaming partial
tool calls, tool results sent back, ``predict_and_call``), structured output, and message serialisation.

Subclass :class:`LLMContract` in a ``test_*.py`` file and override the ``llm`` fixture. The LLM must talk to the
session's FakeProvider model ``FAKE_MODEL`` (``fake`` fixture) so the suite can script replies and read the
requests it received.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from llama_index.core import PromptTemplate
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, LLMMetadata, MessageRole, TextBlock
from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import LLM
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel, Field
from tierroute.testing import FakeProvider, Fault, ModelScript

FAKE_MODEL = "gpt-4o-mini"  # a model LiteLLM's price map knows, so plain LiteLLM LLMs can call tools
SECRET = "sk-contract-secret-000"


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


class Capture(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"sunny, 21 degrees {unit} in {city}"


class Person(BaseModel):
    name: str
    age: int


WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Oslo"}}


class LLMContract:
    """The contract. Subclasses provide ``llm`` (an LLM wired to ``fake`` / ``FAKE_MODEL``)."""

    @pytest.fixture()
    def llm(self, fake: FakeProvider) -> LLM:
        raise NotImplementedError("override the llm fixture")

    def script(self, fake: FakeProvider, **kw: Any) -> None:
        fake.set_script(FAKE_MODEL, ModelScript(**{"reply": "echo", **kw}))

    def sent(self, fake: FakeProvider) -> dict[str, Any]:
        return fake.requests_for(FAKE_MODEL)[-1].body

    # ---- metadata and payload -------------------------------------------------------------------------

    def test_metadata(self, llm: LLM) -> None:
        meta = llm.metadata
        assert isinstance(meta, LLMMetadata)
        assert meta.context_window > 0 and meta.num_output != 0
        assert meta.is_chat_model is True
        assert isinstance(meta.model_name, str) and meta.model_name
        if isinstance(llm, FunctionCallingLLM):
            assert meta.is_function_calling_model is True

    def test_to_payload_is_safe_for_observability(self, llm: LLM) -> None:
        payload = llm.to_payload()
        assert payload["class_name"] == llm.class_name() and payload["model_name"] == llm.metadata.model_name
        assert SECRET not in json.dumps(payload, default=str)

    # ---- chat and complete ------------------------------------------------------------------------------

    def test_chat(self, llm: LLM, fake: FakeProvider) -> None:
        resp = llm.chat(user("hello there"))
        assert resp.message.role == MessageRole.ASSISTANT and resp.message.content == "hello there"
        assert resp.raw is not None
        assert len(fake.requests_for(FAKE_MODEL)) == 1

    async def test_achat(self, llm: LLM) -> None:
        resp = await llm.achat(user("hello async"))
        assert resp.message.role == MessageRole.ASSISTANT and resp.message.content == "hello async"

    def test_complete_prompt_handling(self, llm: LLM) -> None:
        assert llm.complete("positional").text == "positional"
        assert llm.complete(prompt="keyword").text == "keyword"
        with pytest.raises(TypeError):
            llm.complete("a", prompt="b")  # type: ignore[misc]
        with pytest.raises(ValueError):
            llm.complete()  # type: ignore[call-arg]

    async def test_acomplete(self, llm: LLM) -> None:
        assert (await llm.acomplete("async prompt")).text == "async prompt"

    def test_chat_parameters_reach_the_provider(self, llm: LLM, fake: FakeProvider) -> None:
        llm.chat(user("x"), max_tokens=7, stop=["\n\n"])
        body = self.sent(fake)
        assert body["max_tokens"] == 7 and body["stop"] == ["\n\n"]

    # ---- streaming -----------------------------------------------------------------------------------

    def test_stream_chat_is_cumulative(self, llm: LLM) -> None:
        chunks = list(llm.stream_chat(user("one two three four five")))
        assert "".join(c.delta or "" for c in chunks) == "one two three four five"
        assert len([c for c in chunks if c.delta]) > 1
        contents = [c.message.content or "" for c in chunks]
        assert all(b.startswith(a) for a, b in itertools.pairwise(contents))
        assert contents[-1] == "one two three four five"

    async def test_astream_chat_is_cumulative(self, llm: LLM) -> None:
        chunks = [c async for c in await llm.astream_chat(user("alpha beta gamma"))]
        assert "".join(c.delta or "" for c in chunks) == "alpha beta gamma"
        assert chunks[-1].message.content == "alpha beta gamma"

    def test_stream_complete(self, llm: LLM) -> None:
        parts = list(llm.stream_complete("stream me please"))
        assert "".join(p.delta or "" for p in parts) == "stream me please" and parts[-1].text == "stream me please"
        with pytest.raises(ValueError):
            llm.stream_complete()  # type: ignore[call-arg]

    async def test_astream_complete(self, llm: LLM) -> None:
        parts = [p async for p in await llm.astream_complete("async stream")]
        assert parts[-1].text == "async stream"

    # ---- callbacks and instrumentation ----------------------------------------------------------------

    def test_legacy_callbacks_see_inputs_and_outputs(self, llm: LLM) -> None:
        debug = LlamaDebugHandler()
        llm.callback_manager = CallbackManager([debug])
        llm.chat(user("traced"))
        list(llm.stream_chat(user("streamed")))
        pairs = debug.get_llm_inputs_outputs()
        assert len(pairs) == 2
        assert [str(p[1].payload["response"].message.content) for p in pairs] == ["traced", "streamed"]
        assert pairs[0][0].payload["messages"][0].content == "traced"

    async def test_instrumentation_events_share_the_call_span(self, llm: LLM) -> None:
        capture = Capture(events=[])
        root = get_dispatcher()
        root.add_event_handler(capture)
        try:
            await llm.achat(user("instrumented"))
        finally:
            root.event_handlers.remove(capture)
        # an LLM that delegates to another LLM (a router over tier objects) nests that LLM's events inside
        (start,) = [
            e
            for e in capture.events
            if isinstance(e, LLMChatStartEvent) and e.model_dict["class_name"] == llm.class_name()
        ]
        (end,) = [e for e in capture.events if isinstance(e, LLMChatEndEvent) and e.span_id == start.span_id]
        assert start.span_id is not None
        assert end.response is not None and end.response.message.content == "instrumented"
        dumped = end.model_dump()  # exporters serialise events
        assert dumped["response"]["message"]["role"] == "assistant"
        assert SECRET not in json.dumps(start.model_dump(), default=str)

    # ---- what goes on the wire ------------------------------------------------------------------------

    def test_system_prompt_and_roles_reach_the_provider(self, llm: LLM, fake: FakeProvider) -> None:
        llm.system_prompt = "Answer briefly."
        assert llm.predict(PromptTemplate("Say {word}"), word="hi") == "Say hi"
        assert self.sent(fake)["messages"] == [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Say hi"},
        ]
        history = [
            ChatMessage(role=MessageRole.SYSTEM, content="sys"),
            ChatMessage(role=MessageRole.USER, content="first"),
            ChatMessage(role=MessageRole.ASSISTANT, content="reply"),
            ChatMessage(role=MessageRole.USER, content="second"),
        ]
        assert llm.chat(history).message.content == "second"
        assert [(m["role"], m["content"]) for m in self.sent(fake)["messages"]] == [
            ("system", "sys"),
            ("user", "first"),
            ("assistant", "reply"),
            ("user", "second"),
        ]

    def test_image_blocks_are_sent_as_image_parts(self, llm: LLM, fake: FakeProvider) -> None:
        msg = ChatMessage(
            role=MessageRole.USER,
            blocks=[TextBlock(text="what is in this picture?"), ImageBlock(url="https://example.com/cat.png")],
        )
        llm.chat([msg])
        parts = self.sent(fake)["messages"][0]["content"]
        assert parts[0] == {"type": "text", "text": "what is in this picture?"}
        assert parts[1]["type"] == "image_url" and parts[1]["image_url"]["url"] == "https://example.com/cat.png"

    def test_messages_serialise_for_chat_memory(self, llm: LLM) -> None:
        msg = llm.chat(user("remember me")).message
        assert ChatMessage.model_validate_json(msg.model_dump_json()).content == "remember me"

    def test_provider_errors_raise(self, llm: LLM, fake: FakeProvider) -> None:
        self.script(fake, faults=[Fault("auth")])
        with pytest.raises(Exception) as ei:
            llm.chat(user("hi"))
        assert SECRET not in str(ei.value)

    # ---- tool calling ---------------------------------------------------------------------------------

    def _tool_llm(self, llm: LLM) -> FunctionCallingLLM:
        if not isinstance(llm, FunctionCallingLLM):
            pytest.skip("not a function-calling LLM")
        return llm

    def test_chat_with_tools_offers_schemas_and_parses_calls(self, llm: LLM, fake: FakeProvider) -> None:
        fc = self._tool_llm(llm)
        self.script(fake, tool_calls=[WEATHER_CALL])
        tool = FunctionTool.from_defaults(fn=get_weather)
        resp = fc.chat_with_tools([tool], user_msg="weather in Oslo?")
        (call,) = fc.get_tool_calls_from_response(resp)
        assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Oslo"}) and call.tool_id
        (spec,) = self.sent(fake)["tools"]
        assert spec["function"]["name"] == "get_weather"
        assert spec["function"]["parameters"]["required"] == ["city"]

    async def test_tool_results_go_back_to_the_model(self, llm: LLM, fake: FakeProvider) -> None:
        fc = self._tool_llm(llm)
        self.script(fake, tool_calls=[WEATHER_CALL], reply="It is sunny in Oslo.")
        tool = FunctionTool.from_defaults(fn=get_weather)
        history = user("weather in Oslo?")
        first = await fc.achat_with_tools([tool], chat_history=list(history))
        (call,) = fc.get_tool_calls_from_response(first)
        result = ChatMessage(
            role=MessageRole.TOOL,
            content=get_weather(**call.tool_kwargs),
            additional_kwargs={"tool_call_id": call.tool_id},
        )
        final = await fc.achat_with_tools([tool], chat_history=[*history, first.message, result])
        assert final.message.content == "It is sunny in Oslo."
        assert fc.get_tool_calls_from_response(final, error_on_no_tool_call=False) == []
        with pytest.raises(ValueError):
            fc.get_tool_calls_from_response(final)
        wire = self.sent(fake)["messages"]
        assert wire[1]["role"] == "assistant" and wire[1]["tool_calls"][0]["id"] == call.tool_id
        assert (wire[2]["role"], wire[2]["tool_call_id"]) == ("tool", call.tool_id)

    async def test_streamed_tool_calls_parse_on_every_chunk(self, llm: LLM, fake: FakeProvider) -> None:
        fc = self._tool_llm(llm)
        self.script(fake, tool_calls=[WEATHER_CALL])
        tool = FunctionTool.from_defaults(fn=get_weather)
        chunks = [c async for c in await fc.astream_chat_with_tools([tool], user_msg="weather?")]
        for chunk in chunks:  # what FunctionAgent does while streaming
            fc.get_tool_calls_from_response(chunk, error_on_no_tool_call=False)
        (call,) = fc.get_tool_calls_from_response(chunks[-1])
        assert (call.tool_name, call.tool_kwargs) == ("get_weather", {"city": "Oslo"})

    async def test_predict_and_call_runs_the_tool(self, llm: LLM, fake: FakeProvider) -> None:
        fc = self._tool_llm(llm)
        self.script(fake, tool_calls=[WEATHER_CALL])
        tool = FunctionTool.from_defaults(fn=get_weather)
        out = fc.predict_and_call([tool], user_msg="weather in Oslo?")
        assert out.response == "sunny, 21 degrees celsius in Oslo" and out.sources[0].tool_name == "get_weather"
        out = await fc.apredict_and_call([tool], user_msg="weather in Oslo?")
        assert out.response == "sunny, 21 degrees celsius in Oslo"

    def test_structured_predict_and_structured_llm(self, llm: LLM, fake: FakeProvider) -> None:
        self._tool_llm(llm)
        self.script(fake, tool_calls=[{"name": "Person", "arguments": {"name": "Ada", "age": 36}}])
        person = llm.structured_predict(Person, PromptTemplate("Extract: {text}"), text="Ada is 36")
        assert person == Person(name="Ada", age=36)
        resp = llm.as_structured_llm(Person).chat(user("Ada is 36"))
        assert resp.raw == Person(name="Ada", age=36)
        assert json.loads(resp.message.content or "") == {"name": "Ada", "age": 36}
