"""llamaindex_tierroute: tierroute as a LlamaIndex LLM.

``Settings.llm = TierRouteLLM.from_yaml("tierroute.yaml")`` gives every query engine, chat engine and agent
tiered routing, tool calls included. See :class:`TierRouteLLM`.
"""

from __future__ import annotations

from llamaindex_tierroute.backend import LlamaIndexBackend, SpecTool
from llamaindex_tierroute.base import TierRouteLLM
from llamaindex_tierroute.embeddings import LocalEmbedding
from llamaindex_tierroute.events import TierRouteEvent
from llamaindex_tierroute.utils import METADATA_KEY

__all__ = ["METADATA_KEY", "LlamaIndexBackend", "LocalEmbedding", "SpecTool", "TierRouteEvent", "TierRouteLLM"]
