"""``ChatTierRoute``: a LangChain chat model that routes each request to the cheapest tier that clears the bar."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LangSmithParams
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, SkipValidation
from tierroute.config import RouterConfig
from tierroute.errors import ConfigError, TierRouteError
from tierroute.router import CHAT_PARAMS, Completion, TierRouter
from tierroute.sticky import StickySessions
from tierroute.types import RouteRequest

from langchain_tierroute._convert import (
    final_chunk,
    message_chunk_from_stream,
    message_from_backend,
)
from langchain_tierroute._setup import build_request, build_router, effective_config, load_config, split_tiers
from langchain_tierroute._tracing import RunAwareChatModel, RunManager, annotate_run, request_tier, run_context

__all__ = ["ChatTierRoute"]


class ChatTierRoute(RunAwareChatModel):
    r"""LangChain chat model that sends each request to the cheapest tier that clears the quality bar.

    A drop-in for any chat model: chains, LangGraph agents, tools, structured output, streaming and callbacks keep
    working, and every answer says which tier served it, why, and what it cost. Routing (rules, semantic matching,
    a trained classifier), retries, fallbacks and pricing all live in tierroute's core; this class only converts
    LangChain messages to a tierroute request and the answer back.

    Setup:
        Install the extra and write a tierroute config: a LiteLLM ``model_list`` whose model groups are the tiers,
        plus tierroute's ``tiers``, ``routing`` and ``cascade`` sections (see ``examples/tierroute.yaml``).

        ```bash
        pip install "tierroute[langchain]"
        export ANTHROPIC_API_KEY="..."   # whatever the model_list reads through os.environ/NAME
        ```

    Key init args — routing:
        config: RouterConfig | dict | str | Path
            The tierroute config, or the path of its YAML file.
        tiers: dict[str, BaseChatModel]
            Tier name -> LangChain chat model serving that tier instead of a LiteLLM model group (build them with
            ``max_retries=0``: the cascade owns retries). Tiers may mix both kinds.
        tier_prices: dict[str, dict[str, float]]
            ``input_cost_per_token`` / ``output_cost_per_token`` of tier objects (else LiteLLM's price map by name).
        sticky: bool | StickySessions
            Keep each conversation (``thread_id`` in the run metadata) on its first tier unless a turn needs a
            higher one.
        hooks: list
            tierroute request hooks (ledger, budgets, metrics).
    router: TierRouter
        A router built elsewhere (with a classifier, hooks, a shared state store) to use instead of ``config``.

    Key init args — completion params:
        temperature: float | None
            Sampling temperature, sent to whichever tier serves.
        max_tokens: int | None
            Maximum completion tokens.
        stop: list[str] | None
            Default stop sequences.
        timeout: float | None
            Seconds per attempt (replaces ``cascade.timeout_s``).
        max_retries: int | None
            Caps the cascade's retries per failure kind on one tier; fallbacks to other tiers still happen.
        model_kwargs: dict
            Other OpenAI chat parameters for every call (``seed``, ``top_p``...); unknown names are an error.

    Instantiate:
        ```python
        from langchain_tierroute import ChatTierRoute

        llm = ChatTierRoute.from_yaml("tierroute.yaml", temperature=0)

        # or mix LiteLLM model groups with LangChain models passed in:
        from langchain_openai import ChatOpenAI

        llm = ChatTierRoute(
            config="tierroute.yaml",
            tiers={"budget": ChatOpenAI(model="gpt-4.1-mini", max_retries=0)},
            tier_prices={"budget": {"input_cost_per_token": 4e-7, "output_cost_per_token": 1.6e-6}},
        )
        ```

    Invoke:
        ```python
        msg = llm.invoke([("system", "Be brief."), ("human", "tl;dr of this thread: ...")])
        msg.content
        msg.response_metadata["model_name"]  # the model that actually answered, e.g. 'claude-haiku-4-5'
        ```

        `batch`, `abatch` and `ainvoke` work the same way; each request is routed on its own.

    Stream:
        ```python
        for chunk in llm.stream("Write a haiku about queues"):
            print(chunk.text, end="")
        ```

        Retries and fallbacks happen before the first token. The closing chunk (``chunk_position="last"``) carries
        ``usage_metadata`` and ``response_metadata`` (served ``model_name``, ``finish_reason``, ``tierroute``), so
        the sum of the chunks has them exactly once. ``astream`` and ``astream_events`` are native async.

    Tool calling:
        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a city.'''

            city: str = Field(description="City name")


        llm_with_tools = llm.bind_tools([GetWeather], tool_choice="any")
        llm_with_tools.invoke("What is the weather in Paris?").tool_calls
        # [{'name': 'GetWeather', 'args': {'city': 'Paris'}, 'id': 'call_...', 'type': 'tool_call'}]
        ```

        The tools travel in the request, so they reach whichever tier serves after a fallback, and tiers that
        cannot call tools are skipped for tool requests.

    Structured output:
        ```python
        class Joke(BaseModel):
            '''A joke.'''

            setup: str
            punchline: str


        llm.with_structured_output(Joke).invoke("Tell me a joke about cats")
        # Joke(setup='...', punchline='...')
        ```

        ``method`` is ``function_calling`` (default, the most portable across providers), ``json_schema`` or
        ``json_mode``; ``include_raw=True`` keeps the raw ``AIMessage`` with its routing metadata.

    Response metadata:
        ```python
        msg.response_metadata
        # {'model_name': 'claude-haiku-4-5', 'finish_reason': 'stop',
        #  'tierroute': {'tier': 'budget', 'decided_tier': 'budget', 'layer': 'rules',
        #                'reason': "rule 'summarize': keyword 'tl;dr'", 'score': 1.0,
        #                'served_model': 'claude-haiku-4-5', 'attempts': [...],
        #                'cost_usd': 2.1e-05, 'counterfactual_cost_usd': 0.00041}}
        msg.usage_metadata
        # {'input_tokens': 25, 'output_tokens': 11, 'total_tokens': 36}
        ```

        Callbacks get the same in ``on_llm_end`` (``LLMResult.llm_output`` has ``model_name`` and ``tierroute``).
        LangSmith sees ``ls_provider="tierroute"`` and ``ls_model_name``; once a request ends, its run's metadata
        gains ``tierroute_tier``, ``tierroute_layer``, ``tierroute_decided_tier``, ``tierroute_served_model``,
        ``tierroute_attempts`` and ``tierroute_cost_usd`` (written into the run every attached tracer keeps, which
        they send when the run ends).

    Routing:
        ```python
        # config metadata and tags reach the rules layer (task_type, tags, any metadata key a rule names)
        llm.invoke("...", config={"metadata": {"task_type": "summarization"}, "tags": ["support"]})

        # pin a tier (only tiers allow-listed in routing.override.allow)
        llm.invoke("...", model="premium")

        # multi-turn chats keep their tier: keyed by the thread_id LangGraph puts in the run metadata
        llm = ChatTierRoute.from_yaml("tierroute.yaml", sticky=True)

        llm.router.decide("tl;dr please").tier  # ask the router directly, without calling a model
        ```

        Errors are tierroute's: ``ContentPolicyError`` (a refusal is never escalated to a pricier tier),
        ``CascadeExhaustedError`` (``.trace`` has every attempt; ``__cause__`` is the provider's error),
        ``InvalidRequestError`` (unknown parameter, bad messages).
    """

    config: SkipValidation[RouterConfig] = Field(repr=False)
    """The validated tierroute config (pass a RouterConfig, a dict or a YAML path; validated in ``__init__``)."""
    tiers: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
    """Tier name -> LangChain chat model (or tierroute Backend) serving it instead of a LiteLLM model group."""
    tier_prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Prices of tier objects: ``{tier: {"input_cost_per_token": ..., "output_cost_per_token": ...}}`` (USD)."""
    temperature: float | None = None
    """Sampling temperature sent to whichever tier serves."""
    max_tokens: int | None = None
    """Maximum completion tokens."""
    stop: list[str] | None = None
    """Default stop sequences."""
    timeout: float | None = None
    """Seconds per attempt (replaces ``cascade.timeout_s``)."""
    max_retries: int | None = None
    """Caps the cascade's retries per failure kind on one tier (``cascade.retries``); fallbacks still apply."""
    api_key: SecretStr | None = None
    """API key for config deployments that set none."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other OpenAI chat parameters sent on every call (checked against the ones tierroute passes through)."""
    streaming: bool = False
    """Use the streaming path for ``invoke`` too."""
    sticky: bool | StickySessions = False
    """Keep each conversation (``thread_id`` in the run metadata) on its first tier unless a turn needs a higher one."""
    hooks: list[Any] = Field(default_factory=list, exclude=True, repr=False)
    """tierroute request hooks (ledger, budgets, metrics)."""
    encoder: Any = Field(default=None, exclude=True, repr=False)
    """A semantic-router encoder for the semantic layer instead of the configured one."""
    classifier: Any = Field(default=None, exclude=True, repr=False)
    """A trained classifier layer."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _router: TierRouter | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, **data: Any) -> None:
        router = data.pop("router", None)
        tiers = data.get("tiers") or {}
        if router is not None:
            if not isinstance(router, TierRouter):
                raise ConfigError(f"router must be a TierRouter, got {type(router).__name__}", path="router")
            clash = [k for k in ("config", "tiers", "hooks", "timeout", "max_retries", "api_key") if data.get(k)]
            if clash:
                raise ConfigError(
                    f"router= was given together with {clash}, which only apply when ChatTierRoute builds the router",
                    path="router",
                    hint="configure the TierRouter itself, or pass config=... instead of router=...",
                )
            data["config"] = router.config
        elif data.get("config") is None:
            raise ConfigError(
                "ChatTierRoute needs a config",
                path="config",
                hint="ChatTierRoute.from_yaml('tierroute.yaml') or ChatTierRoute(config={...}, tiers={...})",
            )
        else:
            split_tiers(tiers)
            data["config"] = load_config(data["config"], external=tiers.keys())
        unknown = sorted(set(data.get("model_kwargs") or {}) - CHAT_PARAMS)
        if unknown:
            raise ConfigError(
                f"model_kwargs {unknown} are not chat parameters tierroute passes to tiers",
                path="model_kwargs",
                hint=f"supported: {sorted(CHAT_PARAMS)}",
            )
        super().__init__(**data)
        self._router = router

    @classmethod
    def from_yaml(cls, path: str | Path, tiers: dict[str, Any] | None = None, **kwargs: Any) -> ChatTierRoute:
        """Build from a tierroute YAML config (a superset of a LiteLLM config).

        Args:
            path: The YAML file.
            tiers: Tier name -> LangChain chat model for tiers not served by a ``model_list`` group.
            **kwargs: Other fields (``temperature``, ``sticky``, ``hooks``...).

        Raises:
            ConfigError: The file is missing or invalid, or a tier has neither a deployment nor an object.
        """
        return cls(config=path, tiers=dict(tiers or {}), **kwargs)

    # ---- the router ---------------------------------------------------------------------------------

    @property
    def router(self) -> TierRouter:
        """The :class:`~tierroute.TierRouter` (built on first use; tier objects become backends)."""
        if self._router is None:
            with self._lock:
                if self._router is None:
                    cfg = effective_config(
                        self.config, timeout=self.timeout, max_retries=self.max_retries, api_key=self.api_key
                    )
                    router = build_router(
                        cfg,
                        self.tiers,
                        prices=self.tier_prices,
                        hooks=self.hooks,
                        encoder=self.encoder,
                        classifier=self.classifier,
                    )
                    if isinstance(self.sticky, StickySessions):
                        router.hooks.insert(0, self.sticky)
                    elif self.sticky:
                        router.hooks.insert(0, StickySessions.for_router(router))
                    self._router = router
        return self._router

    @property
    def model_name(self) -> str:
        """``tierroute:<tier>|<tier>|...``: the routed model; each answer names the model that served it."""
        return "tierroute:" + "|".join(self.config.tiers)

    @property
    def _llm_type(self) -> str:
        return "tierroute"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "tiers": list(self.config.tiers),
            "default_tier": self.config.default_tier,
            "tier_objects": sorted(self.tiers),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "sticky": bool(self.sticky),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="tierroute", ls_model_name=str(kwargs.get("model") or self.model_name), ls_model_type="chat"
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        ls_stop = stop or self.stop
        if ls_stop:
            params["ls_stop"] = ls_stop
        return params

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text`` (cl100k_base, offline; the same counter the rules layer uses)."""
        from tierroute.tokens import count_tokens

        return count_tokens(text)

    # ---- request building ---------------------------------------------------------------------------

    def _prepare(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: RunManager | None,
        kwargs: dict[str, Any],
    ) -> tuple[RouteRequest, dict[str, Any], RunManager | None]:
        run = run_context(run_manager)
        defaults = {"temperature": self.temperature, "max_tokens": self.max_tokens, "stop": self.stop}
        request, params = build_request(
            self.config, messages, stop=stop, run=run, defaults={**defaults, **self.model_kwargs}, kwargs=kwargs
        )
        return request, params, run.run_manager

    def _result(self, completion: Completion, run_manager: RunManager | None) -> ChatResult:
        annotate_run(run_manager, completion.trace)
        message = message_from_backend(completion.response, completion.trace, completion.trace.decision.tier)
        llm_output = {
            "model_name": message.response_metadata["model_name"],
            "tierroute": message.response_metadata["tierroute"],
        }
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)

    # ---- LangChain hooks ----------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request, params, manager = self._prepare(messages, stop, run_manager, kwargs)
        try:
            completion = self.router.complete(request, **params)
        except TierRouteError as exc:
            annotate_run(manager, getattr(exc, "trace", None), exc)
            raise
        return self._result(completion, manager)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request, params, manager = self._prepare(messages, stop, run_manager, kwargs)
        try:
            completion = await self.router.acomplete(request, **params)
        except TierRouteError as exc:
            annotate_run(manager, getattr(exc, "trace", None), exc)
            raise
        return self._result(completion, manager)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request, params, manager = self._prepare(messages, stop, run_manager, kwargs)
        stream = self.router.stream(request, **params)
        finish: str | None = None
        it = iter(stream)
        try:
            for chunk in it:
                finish = chunk.finish_reason or finish
                message = message_chunk_from_stream(chunk)
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        except TierRouteError as exc:
            annotate_run(manager, getattr(exc, "trace", None) or stream.trace, exc)
            raise
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        annotate_run(manager, stream.trace)
        yield ChatGenerationChunk(message=final_chunk(stream.trace, finish, request_tier(stream.trace)))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request, params, manager = self._prepare(messages, stop, run_manager, kwargs)
        stream = self.router.astream(request, **params)
        finish: str | None = None
        it = stream.__aiter__()
        try:
            async for chunk in it:
                finish = chunk.finish_reason or finish
                message = message_chunk_from_stream(chunk)
                if message is not None:
                    yield ChatGenerationChunk(message=message)
        except TierRouteError as exc:
            annotate_run(manager, getattr(exc, "trace", None) or stream.trace, exc)
            raise
        finally:
            close = getattr(it, "aclose", None)
            if close is not None:
                await close()
        annotate_run(manager, stream.trace)
        yield ChatGenerationChunk(message=final_chunk(stream.trace, finish, request_tier(stream.trace)))
