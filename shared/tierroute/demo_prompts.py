"""The prompts ``tierroute demo`` routes to show each layer of the chain at work.

Each entry is ``{"prompt": str, "metadata": dict}``. Written against ``examples/tierroute.yaml``:

- a few carry metadata: ``task_type`` tags that the ``tagged-summary`` / ``tagged-reasoning`` rules
  match, an allowed ``{"tier": "premium"}`` override, and a ``{"tier": "budget"}`` override that the
  config does not allow (so routing carries on as if it were absent);
- some hit the keyword rule (``tl;dr``, ``bullet points``) or the code regex (``function``, ``debug``, ...);
- most have no rule hit and are left to the semantic layer, a handful aimed at each tier;
- a few are too vague for any layer and fall through to ``default_tier``.

Where a prompt lands depends on the config and encoder in use; nothing here asserts a tier.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEMO_PROMPTS"]

DEMO_PROMPTS: list[dict[str, Any]] = [
    # Metadata: task_type tags, and tier overrides (one allowed, one not).
    {
        "prompt": "Condense today's standup notes into a few lines for the team channel.",
        "metadata": {"task_type": "summarization"},
    },
    {
        "prompt": "Which queue does this ticket belong in? 'My card was charged twice for one order.'",
        "metadata": {"task_type": "classification"},
    },
    {
        "prompt": "Lay out a six-month roadmap for launching our app in Brazil.",
        "metadata": {"task_type": "planning"},
    },
    {"prompt": "Suggest a name for a neighbourhood coffee shop.", "metadata": {"tier": "premium"}},
    {"prompt": "Is 'me and him goes there' grammatical?", "metadata": {"tier": "budget"}},
    # Keyword rule (summaries).
    {
        "prompt": "tl;dr please: v2.3 adds SSO, drops Python 3.8 support, and fixes the CSV export timeout.",
        "metadata": {},
    },
    {
        "prompt": "Turn this paragraph into bullet points: we hired two designers, moved the launch to May, "
        "and cut the marketing budget by 10%.",
        "metadata": {},
    },
    # Code regex.
    {"prompt": "Write a function that removes duplicates from a list but keeps the original order.", "metadata": {}},
    {"prompt": "Why does this code raise KeyError: 'user_id' when the payload has no user field?", "metadata": {}},
    {"prompt": "Add unit tests for the date-parsing helper in utils.py.", "metadata": {}},
    # Semantic layer, budget-like.
    {"prompt": "What's the capital of Australia?", "metadata": {}},
    {"prompt": "How do you say 'thank you very much' in Italian?", "metadata": {}},
    {"prompt": "Convert 5 miles to kilometres.", "metadata": {}},
    {"prompt": "Pull the email addresses out of: 'Reach ana@example.com or ops@example.org.'", "metadata": {}},
    {"prompt": "Positive or negative? 'Arrived broken and support never replied.'", "metadata": {}},
    # Semantic layer, mid-like.
    {"prompt": "Write a SQL query listing customers who haven't ordered in the last 90 days.", "metadata": {}},
    {"prompt": "Draft a polite email asking a supplier for a corrected invoice.", "metadata": {}},
    {"prompt": "What's the difference between a process and a thread?", "metadata": {}},
    {"prompt": "Compare Postgres and MySQL for a small web shop.", "metadata": {}},
    {"prompt": "Outline a blog post about onboarding engineers who work remotely.", "metadata": {}},
    # Semantic layer, premium-like.
    {
        "prompt": "Design a payments service that keeps taking orders through a full cloud region outage, "
        "and weigh the consistency tradeoffs.",
        "metadata": {},
    },
    {"prompt": "Prove that the square root of 2 is irrational.", "metadata": {}},
    {
        "prompt": "What legal exposure do we take on if a contract makes us liable for our vendor's negligence?",
        "metadata": {},
    },
    {
        "prompt": "Checkout latency tripled after Tuesday's deploy, only for some users, and rollback didn't help. "
        "What's the likely root cause and how do we confirm it?",
        "metadata": {},
    },
    {
        "prompt": "Propose a study, with hypotheses and metrics, to test whether shorter onboarding emails "
        "improve activation.",
        "metadata": {},
    },
    # Vague: no layer should be confident, so these fall to the default tier.
    {"prompt": "hi", "metadata": {}},
    {"prompt": "thanks!", "metadata": {}},
    {"prompt": "ok", "metadata": {}},
    {"prompt": "can you help me with something?", "metadata": {}},
    {"prompt": "hmm, not sure", "metadata": {}},
]
