"""The prompt's token ids: chat-template messages rendered with the base model's own template and fitted
into a token budget. One function, so the trainer teaches exactly the prompts the resolver sends.

A conversation too long for the budget loses its oldest turns first, whole; the system prompt always
stays (cutting tokens off the front, as a plain left truncation does, would cut the system prompt first).
Only a single remaining turn longer than the budget is cut inside, keeping its end.
"""

from __future__ import annotations

from typing import Sequence


def render(tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prompt_token_ids(tokenizer, messages: Sequence[dict[str, str]], max_tokens: int) -> list[int]:
    """Token ids of the prompt for the agent's next turn, at most `max_tokens` long."""
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = list(messages[len(system):])
    while True:
        ids = render(tokenizer, system + turns)
        if len(ids) <= max_tokens or len(turns) <= 1:
            break
        turns = turns[1:]
    if len(ids) <= max_tokens:
        return ids
    head = render(tokenizer, system)[:-_generation_suffix_length(tokenizer)] if system else []
    room = max(0, max_tokens - len(head))
    return head + ids[len(ids) - room:] if room else ids[len(ids) - max_tokens:]


def _generation_suffix_length(tokenizer) -> int:
    """Tokens the template adds for the assistant's opening (`<|im_start|>assistant\\n`): rendered alone
    after the system prompt they would be counted twice."""
    bare = render(tokenizer, [{"role": "system", "content": "x"}])
    closed = tokenizer(tokenizer.apply_chat_template([{"role": "system", "content": "x"}], tokenize=False,
                                                     add_generation_prompt=False), add_special_tokens=False)
    return len(bare) - len(closed["input_ids"])
