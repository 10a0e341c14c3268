"""The demo's customers judge each AI answer against what the human agent did (demo/domain/judge.py), so
the demo's resolution rate moves with the model's quality: the same live tickets, played by the demo's
own LiveTicket, answered once by an adapter trained (with the trainer's own loop) on these tickets'
history and once by the base model alone in its place. Neither may escalate (an unreadable answer is
sent as it is): a model that answers every ticket wrongly without escalating must not look resolved."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from clonedesk.core.domain.conversation_format import chat_messages, parse_target, system_prompt
from clonedesk.core.domain.decision_header import history_action_names
from clonedesk.demo.domain import judge as judging
from clonedesk.demo.domain.judge import AgentTurn, Move, judge, react
from clonedesk.demo.domain.reactions import Fate, LiveScript, Reaction, live_script
from clonedesk.v1 import common_pb2, resolver_pb2
from tests.e2e.test_demo_parts import PostedReplies, RecordingSender, dialogues

TENANT = "banks-1"


# -- the judgement (pure) -------------------------------------------------------------------------------

def test_an_answer_is_right_when_decision_call_and_words_are_the_agents():
    agent = AgentTurn(common_pb2.ACTION, 'CheckBalance(account_type="checking")', "Your checking balance is $1,200.")
    right = judge(common_pb2.ACTION, "CheckBalance(account_type=savings)", "Your checking balance is $1,200.", agent)
    assert right.right and right.decision_right and right.quality > 0.9
    other_call = judge(common_pb2.ACTION, "TransferMoney(amount=5)", "Your checking balance is $1,200.", agent)
    assert not other_call.right and not other_call.decision_right and other_call.quality <= 0.5
    off_words = judge(common_pb2.ACTION, "CheckBalance()", "Hello there.", agent)
    assert off_words.decision_right and not off_words.right
    asked = judge(common_pb2.ASK, "", "Which account?", AgentTurn(common_pb2.ASK, "", "Which account is it?"))
    assert asked.right


def test_a_wrong_answer_makes_the_customer_push_back_and_the_worse_it_is_the_sooner_they_give_up():
    near_miss = judging.Verdict(False, 0.45, True, 10.0)
    nonsense = judging.Verdict(False, 0.0, False, 0.0)

    def give_up_rate(verdict):
        moves = [react(verdict, "Check my balance", False, random.Random(i)).move for i in range(400)]
        return moves.count(Move.ASK_FOR_HUMAN) / len(moves)

    assert give_up_rate(nonsense) > give_up_rate(near_miss) + 0.15
    repeat = next(r for r in (react(near_miss, "Check my balance", False, random.Random(i)) for i in range(50))
                  if r.move is Move.REPEAT)
    assert repeat.message.endswith("Check my balance")
    assert react(near_miss, "Check my balance", True, random.Random(0)).move is Move.ASK_FOR_HUMAN  # twice wrong
    assert react(judging.Verdict(True, 1.0, True, 80.0), "x", False, random.Random(0)).move is Move.GO_ON
    from clonedesk.resolver.domain.human_request import asks_for_a_human

    assert all(asks_for_a_human(m) for m in judging.FED_UP)  # the resolver hands those over


def test_the_rating_follows_how_the_conversation_went():
    def mean(course):
        return sum(judging.rating(course, random.Random(i)) for i in range(300)) / 300

    assert mean("all right") > mean("one push-back") > mean("human needed")


def test_the_script_knows_what_the_agent_did_after_each_customer_message():
    dialogue = dialogues("Banks_1")[0]
    script = live_script(dialogue, 3, seed=7, tenant_id=TENANT)
    assert len(script.answers) == len(script.customer_messages)
    first_system = next(t for t in dialogue["turns"] if t["speaker"] == "SYSTEM")
    assert script.answers[0].reply == first_system["utterance"]


class ScriptedResolver:
    def __init__(self, answers):
        self.answers = list(answers)

    async def wait_for(self, request_id, timeout, what):
        decision, reply = self.answers.pop(0)
        return resolver_pb2.Resolution(resolution_id=f"r{len(self.answers) + 1}", decision=decision, reply=reply,
                                       adapter_version="t@v1", request_id=request_id)


def _play(script, answers, seed=3):
    from clonedesk.demo.live import LiveTicket

    sender = RecordingSender()
    ticket = LiveTicket("t", "secret", script, sender, EchoReplies(), ScriptedResolver(answers), 5, judge_seed=seed)
    return asyncio.run(ticket.play()), sender.sent


class EchoReplies(PostedReplies):
    async def wait_for(self, tenant_id, ticket_id, key, timeout):
        return {"body": "posted", "id": 1}


def test_a_wrong_answer_is_repeated_to_the_ai_and_a_second_wrong_one_ends_with_a_human():
    answers = (AgentTurn(common_pb2.ASK, "", "Which account would you like to check?"),
               AgentTurn(common_pb2.RESOLVE, "", "Your balance is $1,200."), AgentTurn(common_pb2.RESOLVE, "", "Bye"))
    script = LiveScript("42", "CheckBalance", ("I want my balance", "Checking", "Thanks!"), ("Which account?", "Done.", "Bye."),
                        Fate(None, False, 2), answers)
    # right, then wrong twice: one repeat, then a request for a person, which the AI hands over
    result, sent = _play(script, [(common_pb2.ASK, "Which account would you like to check?"),
                                  (common_pb2.ASK, "What is your name?"), (common_pb2.ASK, "Where do you live?"),
                                  (common_pb2.ESCALATE, "")], seed=1)
    assert result.reactions[Reaction.ANSWER_RIGHT] == 1
    assert result.push_backs >= 1 and result.gave_up and result.human_took_over
    customer_lines = [p["event"]["comment"]["body"] for p in sent
                      if p["type"].endswith("comment_added") and not p["event"]["comment"]["author"]["is_staff"]]
    assert any(line in judging.FED_UP for line in customer_lines)
    kinds = [p["type"].rsplit(".", 1)[1] for p in sent]
    assert "satisfaction_rating_changed" in kinds and kinds.index("agent_assignment_changed") < kinds.index(
        "satisfaction_rating_changed")
    rating = next(p for p in sent if p["type"].endswith("satisfaction_rating_changed"))
    assert rating["event"]["current"] in judging.CSAT_BY_COURSE["human needed"]


# -- the same tickets, answered by a trained adapter and by the base model alone ------------------------

class ModelResolver:
    """Answers each customer message with a real model (the tiny base, with or without the adapter), from
    the conversation as the helpdesk saw it, its header constrained to the four decisions and the
    tenant's calls. It never escalates on its own (an unreadable answer goes out as it is), except that a
    request for a person is handed over, as the resolver's rule does."""

    def __init__(self, model, tokenizer, action_names, sender: RecordingSender):
        from clonedesk.core.constrained_generation import header_constraint

        self.model, self.tokenizer, self.sender = model, tokenizer, sender
        self.constraint = header_constraint(tokenizer, action_names)
        self.count = 0

    def _conversation(self):
        turns = []
        for payload in self.sender.sent:
            kind = payload["type"].rsplit(".", 1)[1]
            if kind == "created":
                turns.append(("customer", payload["detail"]["description"]))
            elif kind == "comment_added":
                comment = payload["event"]["comment"]
                turns.append(("agent" if comment["author"]["is_staff"] else "customer", comment["body"]))
        return turns

    async def wait_for(self, request_id, timeout, what):
        from clonedesk.resolver.domain.human_request import asks_for_a_human
        from clonedesk.trainer.adapters.lora import generate_for_messages

        self.count += 1
        turns = self._conversation()
        if asks_for_a_human(turns[-1][1]):
            return resolver_pb2.Resolution(resolution_id=f"r{self.count}", decision=common_pb2.ESCALATE,
                                           adapter_version="t@v1", request_id=request_id,
                                           escalation_reason="customer asked for a human")
        messages = chat_messages([("user" if role == "customer" else "assistant", text) for role, text in turns],
                                 system_prompt(TENANT), max_turns=4)
        text = generate_for_messages(self.model, self.tokenizer, [messages], max_new_tokens=96,
                                     constraint=self.constraint)[0].text
        turn = parse_target(text)
        decision = turn.decision if turn.decision != common_pb2.ESCALATE else common_pb2.RESOLVE
        return resolver_pb2.Resolution(resolution_id=f"r{self.count}", decision=decision, action=turn.action,
                                       reply=turn.reply or text.strip() or "…", adapter_version="t@v1",
                                       request_id=request_id)


@pytest.mark.slow
def test_the_base_model_in_the_adapters_place_gets_a_clearly_lower_resolution_rate(tmp_path):
    from clonedesk.core.base_model import ensure_base_model
    from clonedesk.core.settings import Settings
    from clonedesk.demo.live import LiveTicket
    from clonedesk.trainer.adapters.lora import LoraTrainingConfig, load_model, train_adapter
    from clonedesk.ingest.domain.sgd import dialogue_samples
    from clonedesk.core.tiny_model import TINY_MODEL_RECIPE

    chosen = dialogues("Banks_1")[:10]
    samples = [s for d in chosen for s in dialogue_samples(TENANT, d)]
    base = ensure_base_model(Settings(data_dir=tmp_path / "data"))
    recipe = {k: v for k, v in TINY_MODEL_RECIPE.items() if k not in ("lora_rank", "lora_alpha", "lora_layers")}
    config = dataclasses.replace(LoraTrainingConfig(), rank=TINY_MODEL_RECIPE["lora_rank"],
                                 alpha=TINY_MODEL_RECIPE["lora_alpha"], learning_rate=recipe["learning_rate"],
                                 final_lr_fraction=recipe["final_lr_fraction"], epochs=12.0, max_steps=240,
                                 batch_size=8, max_length=recipe["max_length"], mixed_precision="no",
                                 action_results=False)
    train_adapter(base, samples, tmp_path / "adapter", config=config)
    names = history_action_names(samples)

    def play_all(adapter_dir):
        model, tokenizer = load_model(base, adapter_dir)
        results = []
        for dialogue in chosen:
            # every ticket rated and never taken over by chance: only the answers move the figures
            script = dataclasses.replace(live_script(dialogue, 3, seed=7, tenant_id=TENANT),
                                         fate=Fate(None, False, 3))
            sender = RecordingSender()
            ticket = LiveTicket(TENANT, "secret", script, sender, EchoReplies(),
                                ModelResolver(model, tokenizer, names, sender), 5, judge_seed=7)
            results.append(asyncio.run(ticket.play()))
        return results

    with_adapter, base_alone = play_all(tmp_path / "adapter"), play_all(None)

    def resolved(results):  # solved with no human: what the demo's resolution rate counts
        return sum(not r.human_took_over for r in results) / len(results)

    def judged_right(results):
        verdicts = [v for r in results for v in r.verdicts]
        return sum(v.right for v in verdicts) / len(verdicts)

    assert not any(r.ai_escalated and "human" not in r.escalation_reason for r in with_adapter + base_alone)
    print(f"judged right: adapter {judged_right(with_adapter):.0%}, base {judged_right(base_alone):.0%};"
          f" resolved: adapter {resolved(with_adapter):.0%}, base {resolved(base_alone):.0%}")
    assert judged_right(with_adapter) >= judged_right(base_alone) + 0.3, (judged_right(with_adapter),
                                                                          judged_right(base_alone))
    assert resolved(with_adapter) >= resolved(base_alone) + 0.3, (resolved(with_adapter), resolved(base_alone))
    assert sum(r.push_backs for r in base_alone) > sum(r.push_backs for r in with_adapter)
