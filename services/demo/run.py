"""`clonedesk demo`: the steps, in order, each with its progress and a bounded wait.

1. the embedded stack (`clonedesk up --detach`) and three tenants, one per SGD business;
2. each tenant's history: a few tickets as signed Zendesk webhooks through the gateway, the bulk through
   the importer;
3. the trainer trains each tenant's first adapter; the accuracy preview beside the base model and the
   retrieval baseline;
4. go-live, and live tickets: webhooks in, the resolver's replies out to the helpdesk simulator, the
   customers' reactions back as webhooks;
5. more resolved history; the trainer refreshes each adapter, hot-swapped while live tickets run;
6. each tenant's invoice, resolution and escalation rates and CSAT from the analytics API, and the
   dashboard's address.

The stack keeps running afterwards (`clonedesk status`, `clonedesk down`). See adapters/workspace.py
for what a second run does with the first one's data.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)
from rich.table import Table

from clonedesk.core.adapters import (NotReadyToGoLive, adapter_name, current_version, go_live, rejection_reason,
                                     version_meta)
from clonedesk.core.domain.holdout import DEFAULT_HOLDOUT_FRACTION, is_holdout, may_be_pretrained_on
from clonedesk.core.base_model import describe_base_model, ensure_base_model
from clonedesk.core.domain.preview_figures import CANDIDATES, METRIC_LABELS, candidate_figure
from clonedesk.core.settings import Settings
from clonedesk.core.sgd import find_sgd_dir, read_dialogues
from clonedesk.core.tenants import Tenant, TenantStore, admin_api_key
from clonedesk.demo.adapters.analytics import AnalyticsClient
from clonedesk.demo.adapters.helpdesk import DemoStepFailed, SimulatorBackOffice, SimulatorReplies, WebhookSender
from clonedesk.demo.adapters.product import ProductCommands
from clonedesk.demo.adapters.resolutions import ResolutionWatcher
from clonedesk.demo.adapters.samples import TrainableSamples
from clonedesk.core.domain.sgd import recorded_calls
from clonedesk.demo.adapters.workspace import prepare, write_marker
from clonedesk.demo.domain import zendesk_events as zd
from clonedesk.demo.domain.reactions import live_script
from clonedesk.demo.domain.report import invoice_cells, month_of, tenant_figures
from clonedesk.demo.domain.split import TenantPlan, plan_tenant, trainer_thresholds
from clonedesk.demo.domain.waiting import StallDeadline
from clonedesk.demo.modes import FULL_MODE, QUICK_MODE, Mode
from clonedesk.demo.tables import action_replies_table, curve_table, escalation_kinds, live_table
from clonedesk.demo.live import LiveTicket, TicketResult

BUSINESSES = ("Banks_1", "RentalCars_1", "Hotels_1")
SEED = 7
# The demo tenants' plan: a few free resolutions (the default plan has 100), so the invoice shows charges.
DEMO_FREE_UNITS = 3
LIVE_CONCURRENCY = 6  # live tickets in flight at once, over all tenants (the resolver batches them)



def find_dialogues() -> Path:
    """The SGD subset the project carries (data/sgd), else the shared datasets beside the project."""
    found = find_sgd_dir([f"train_{b}.jsonl" for b in BUSINESSES], carried_first=True)
    if found is None:
        raise DemoStepFailed("the SGD dialogues (data/sgd/train_Banks_1.jsonl, ...) are not in this checkout")
    return found


class Demo:
    def __init__(self, settings: Settings, mode: Mode, ephemeral: bool, console: Console):
        self.settings = settings
        self.mode = mode
        self.ephemeral = ephemeral
        self.console = console
        self.data_dir = settings.resolved_data_dir
        self.tenants: dict[str, Tenant] = {}
        self.plans: list[TenantPlan] = []
        self.live_versions: dict[str, int] = {}
        self.results: list[TicketResult] = []
        self.watcher: ResolutionWatcher | None = None  # what the resolver answered, kept for the bill
        # What the demo showed, per tenant, written to <data>/demo/summary.json at the end.
        self.summary: dict[str, dict] = {}
        self.senders: list[WebhookSender] = []  # each acknowledged webhook's event id goes in the summary
        self.base_model = settings.base_model or ""
        self.started = time.monotonic()
        self.commands = ProductCommands(settings)
        self.samples: TrainableSamples | None = None  # each tenant's trainable samples, for the progress
        # The trainer's holdout (its CLONEDESK_TRAINER_HOLDOUT_FRACTION): the demo plans around the same one.
        self.holdout_fraction = float(os.environ.get("CLONEDESK_TRAINER_HOLDOUT_FRACTION", DEFAULT_HOLDOUT_FRACTION))

    # -- output -------------------------------------------------------------------------------------

    def step(self, number: int, title: str) -> None:
        elapsed = time.monotonic() - self.started
        self.console.rule(f"[bold]{number}/6 {title}[/]  [dim]{elapsed:5.0f}s[/]")

    def done(self, text: str) -> None:
        self.console.print(f"[green]✓[/] {text}")

    def progress(self) -> Progress:
        return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=self.console, transient=False)

    # -- 1: stack and tenants -----------------------------------------------------------------------

    def configure_trainer(self) -> dict[str, int]:
        """Plan every tenant's dialogues and export the trainer settings that fit them, before `up`
        (the stack passes the environment to its children)."""
        for name, value in self.mode.trainer_env.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("CLONEDESK_TRAINER_REFRESH_MAX_INTERVAL_S", "86400")  # refresh on new data only
        # Two cores for a dozen processes: torch's worker threads in the trainer, the resolver and this
        # process would spin against each other (several times slower); one thread each.
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        fraction = self.holdout_fraction
        sgd = find_dialogues()
        self.plans = [plan_tenant(b, list(read_dialogues(sgd / f"train_{b}.jsonl")), self.mode.sizes, SEED,
                                  lambda ticket: is_holdout(ticket, fraction), pretrained_on=may_be_pretrained_on)
                      for b in BUSINESSES]
        thresholds = trainer_thresholds(self.plans)
        os.environ["CLONEDESK_TRAINER_FIRST_MIN_SAMPLES"] = str(thresholds["first_min_samples"])
        os.environ["CLONEDESK_TRAINER_REFRESH_MIN_NEW_SAMPLES"] = str(thresholds["refresh_min_new_samples"])
        return thresholds

    def start_stack(self) -> None:
        self.step(1, "the embedded stack and three tenants")
        found = prepare(self.settings, lambda _settings: self.commands.down())
        self.console.print(f"data dir {self.data_dir}: {found}")
        thresholds = self.configure_trainer()
        self.console.print(f"trainer: first adapter at {thresholds['first_min_samples']} samples, refresh"
                           " after"
                           f" {thresholds['refresh_min_new_samples']} new ones (from the split below)")
        if self.mode.base_model and not self.settings.base_model:
            # The stack's children read it from the environment.
            os.environ["CLONEDESK_BASE_MODEL"] = self.mode.base_model
            self.settings = self.settings.model_copy(update={"base_model": self.mode.base_model})
        with self.console.status("the base model (made once per data dir)…"):
            self.base_model = ensure_base_model(self.settings, progress=True)
        self.console.print(f"base model: {describe_base_model(self.base_model)}")
        with self.console.status("starting broker, S3 store and every service (`clonedesk up --detach`)…"):
            status = self.commands.up(self.ephemeral)
        self.console.print(status.rstrip())
        store = TenantStore(self.data_dir)
        table = Table("tenant", "SGD business", "dialogues", "history (webhooks + import)", "trainable samples",
                      "refresh tickets", "live tickets", title="tenants and their dialogues (seeded split)")
        for plan in self.plans:
            tenant = store.find(plan.tenant_id) or store.add(plan.tenant_id)
            tenant.plan.free_units = DEMO_FREE_UNITS
            tenant.escalation_threshold = self.mode.threshold_override  # None: chosen from the holdout
            tenant.target_accuracy = self.mode.target_accuracy
            store.save(tenant)
            self.tenants[plan.tenant_id] = tenant
            table.add_row(plan.tenant_id, plan.business, str(plan.dialogues),
                          f"{len(plan.history)} ({len(plan.history_webhooks)} + {len(plan.history_import)})",
                          str(plan.history_trainable), str(len(plan.refresh)), str(len(plan.live)))
        self.console.print(table)
        self.done(f"stack up; tenants {', '.join(self.tenants)} created (plan: {DEMO_FREE_UNITS} free"
                  f" resolutions, then $0.99 each; {self.threshold_words()})")

    def threshold_words(self) -> str:
        if self.mode.threshold_override is not None:
            return (f"escalation under a fixed confidence of {self.mode.threshold_override} (the test model is"
                    " never right often enough for a target accuracy)")
        return (f"escalation under the threshold each adapter's holdout sets for {self.mode.target_accuracy:.0%}"
                " accuracy on answered turns")

    # -- 2: history ---------------------------------------------------------------------------------

    async def send_history(self, client: httpx.AsyncClient) -> None:
        self.step(2, "history arrives: signed webhooks through the gateway, the bulk through the importer")
        sender = WebhookSender(client, f"http://127.0.0.1:{self.settings.gateway_port}")
        self.senders.append(sender)
        at = datetime.now(timezone.utc) - timedelta(days=30)
        with self.progress() as progress:
            for plan in self.plans:
                hooks = [h for d in plan.history_webhooks for h in zd.resolved_ticket(plan.tenant_id, d, at)]
                task = progress.add_task(f"{plan.tenant_id}: webhooks", total=len(hooks))
                for hook in hooks:
                    await sender.send(plan.tenant_id, self.tenants[plan.tenant_id].zendesk_secret, hook)
                    progress.advance(task)
        for plan in self.plans:
            path = self.write_export(plan.tenant_id, "history", plan.history_import)
            report = await asyncio.to_thread(self.commands.import_history, "sgd", path, plan.tenant_id)
            if report["rejected"]:
                raise DemoStepFailed(f"the importer rejected {report['rejected']} dialogues of {plan.tenant_id}:"
                                     f" {report['problems'][:3]}")
        self.done(f"{sender.sent} signed webhooks accepted by the gateway;"
                  f" {sum(len(p.history_import) for p in self.plans)} dialogues imported")

    def write_export(self, tenant_id: str, name: str, dialogues: list[dict]) -> Path:
        path = self.settings.path("demo", f"{tenant_id}-{name}.jsonl")
        path.write_text("".join(json.dumps(d) + "\n" for d in dialogues))
        return path

    # -- 3: training and preview --------------------------------------------------------------------

    async def wait_for_versions(self, target: dict[str, int], samples: dict[str, int], progress: Progress,
                                label: str, on_ready=None) -> None:
        """Until each tenant's current adapter is at least `target[tenant]`, showing the trainable samples
        buffered against `samples[tenant]`; a rejected refresh also ends the wait for its tenant (the
        current version stays, and the line says so)."""
        tasks = {t: progress.add_task(f"{t}: {label}", total=samples[t]) for t in target}
        # The trainer builds the adapters one after another: the limit is for the next one to arrive.
        deadline = StallDeadline(self.mode.training_timeout_s)
        pending = dict(target)
        while pending:
            for tenant_id, wanted in list(pending.items()):
                version = current_version(self.data_dir, tenant_id) or 0
                rejected = rejection_reason(self.data_dir, tenant_id, wanted)
                if version >= wanted or rejected:
                    word = f"{adapter_name(tenant_id, version)} current"
                    if rejected:
                        word += f" (v{wanted} rejected: {rejected})"
                    progress.update(tasks[tenant_id], description=f"{tenant_id}: {word}",
                                    completed=samples[tenant_id])
                    del pending[tenant_id]
                    deadline.progressed()
                    if on_ready is not None:
                        on_ready(tenant_id)
                else:
                    count = self.samples.count(tenant_id) if self.samples else 0
                    progress.update(tasks[tenant_id], completed=min(count, samples[tenant_id]))
            if not pending:
                break
            if deadline.expired():
                raise DemoStepFailed(f"no adapter {', '.join(adapter_name(t, v) for t, v in pending.items())} within"
                                     f" {self.mode.training_timeout_s:.0f}s of the last to arrive"
                                     " (see logs/trainer.log)")
            await asyncio.sleep(2.0)

    async def train_and_preview(self) -> None:
        """Wait for each first adapter and preview it as soon as it is there, while the trainer goes on
        with the next tenant: each process keeps to one thread, so the two share the two cores without
        oversubscribing them (a preview beside a two-thread run slowed both several times over)."""
        self.step(3, "the trainer builds each tenant's adapter; the accuracy preview")
        ready: asyncio.Queue[str] = asyncio.Queue()
        reports: dict[str, dict] = {}
        with self.progress() as progress:
            waiter = asyncio.create_task(self.wait_for_versions(
                {p.tenant_id: 1 for p in self.plans},
                {p.tenant_id: p.history_trainable for p in self.plans},
                progress, "samples buffered", on_ready=ready.put_nowait))
            try:
                while len(reports) < len(self.plans):
                    getter = asyncio.create_task(ready.get())
                    done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter not in done:
                        getter.cancel()
                        waiter.result()  # the wait failed (timeout): raise it; else the queue holds the rest
                        continue
                    tenant_id = getter.result()
                    task = progress.add_task(f"{tenant_id}: accuracy preview", total=None)
                    reports[tenant_id] = await asyncio.to_thread(self.commands.preview, tenant_id,
                                                                 self.mode.preview_base)
                    progress.update(task, description=f"{tenant_id}: accuracy preview of"
                                                      f" {reports[tenant_id]['adapter_version']} done",
                                    total=1, completed=1)
            finally:
                if not waiter.done():
                    waiter.cancel()
        table = Table("adapter", "held-out tickets", "metric", "adapter", "base model", "retrieval",
                      title="accuracy preview: each tenant's adapter, the base model and retrieval on the"
                            " same held-out tickets")
        for plan in self.plans:
            report = reports[plan.tenant_id]
            self.summary.setdefault(plan.tenant_id, {})["preview"] = report
            for index, metric in enumerate(METRIC_LABELS):
                cells = [candidate_figure(report, name, metric) for name in CANDIDATES]
                first = index == 0
                table.add_row(report["adapter_version"] if first else "",
                              str(report["holdout_tickets"]) if first else "", METRIC_LABELS[metric],
                              *cells, end_section=index == len(METRIC_LABELS) - 1)
        self.console.print(table)
        self.console.print("[dim][low–high]: bootstrap 95% interval over held-out tickets. — : undefined"
                           " (escalation precision when nothing was escalated, recall when no held-out turn was an"
                           " escalation). Answered and projected resolution: at the adapter's threshold; the base"
                           f" model and retrieval answer every turn. Base model: {describe_base_model(self.base_model)}.[/]")
        self.console.print(curve_table(self.plans, reports))
        self.print_training_budget({p.tenant_id: 1 for p in self.plans}, "what each first adapter's training used")
        self.done("first adapters trained and previewed (saved as each version's preview.json)")

    def print_training_budget(self, versions: dict[str, int], title: str) -> None:
        """What each run was given and took: the budget the demo set for this machine, as recorded in
        each version's meta.json."""
        table = Table("adapter", "samples", "steps × batch", "epochs", "context turns", "max tokens", "LoRA",
                      "tokens/s", "training s", title=f"{title} (base model: {describe_base_model(self.base_model)})")
        for tenant_id, version in versions.items():
            record = version_meta(self.data_dir, tenant_id, version)
            if record is None:
                continue
            config, run = record.training_config, record.training
            layers = f"top {config['layers_to_train']} layers" if config.get("layers_to_train") else "all layers"
            self.summary.setdefault(tenant_id, {}).setdefault("training", {})[f"v{version}"] = {
                "samples": record.sample_count, **run, "config": config}
            table.add_row(record.name, str(record.sample_count if record.sample_count is not None else "?"),
                          f"{run.get('steps', '?')} × {config.get('batch_size', '?')}",
                          str(config.get("epochs", "?")), str(config.get("context_turns", "?")),
                          str(config.get("max_length", "?")),
                          f"r{config.get('rank', '?')}, {layers}",
                          f"{run['tokens'] / run['seconds']:,.0f}" if run.get("seconds") else "?",
                          f"{run.get('seconds', 0):.0f}")
        self.console.print(table)

    # -- 4 and 5: live traffic and the refresh ------------------------------------------------------

    def go_live(self) -> None:
        for tenant_id in self.tenants:
            try:
                self.live_versions[tenant_id] = go_live(self.data_dir, tenant_id)
            except NotReadyToGoLive as exc:
                raise DemoStepFailed(str(exc)) from None
        self.done("tenants live: " + ", ".join(adapter_name(t, v) for t, v in self.live_versions.items()))

    def live_ticket(self, plan: TenantPlan, dialogue: dict, sender, simulator, watcher,
                    back_office: SimulatorBackOffice) -> LiveTicket:
        script = live_script(dialogue, self.mode.sizes.live_turns, SEED, plan.tenant_id)
        secret = self.tenants[plan.tenant_id].zendesk_secret
        return LiveTicket(plan.tenant_id, secret, script, sender, simulator, watcher,
                          self.mode.resolve_timeout_s, back_office, recorded_calls(dialogue), judge_seed=SEED)

    async def open_back_offices(self, back_office: SimulatorBackOffice) -> None:
        """Each tenant's actions URL is the simulator's back office, which answers a live ticket's calls
        from its dialogue's recorded results."""
        store = TenantStore(self.data_dir)
        for tenant_id in self.tenants:
            tenant = store.get(tenant_id)
            tenant.actions_url = back_office.actions_url(tenant_id)
            store.save(tenant)
            await back_office.open_for(tenant_id, tenant.actions_secret)

    async def play(self, tickets: list[LiveTicket], progress: Progress, label: str,
                   gate: asyncio.Semaphore) -> list[TicketResult]:
        task = progress.add_task(label, total=len(tickets))

        async def one(ticket: LiveTicket) -> TicketResult:
            async with gate:
                result = await ticket.play()
            progress.advance(task)
            return result

        results = await asyncio.gather(*(one(t) for t in tickets))
        self.results.extend(results)
        return list(results)

    async def live_and_refresh(self, client: httpx.AsyncClient) -> None:
        self.step(4, "go-live: live tickets answered by each tenant's adapter")
        self.go_live()
        sender = WebhookSender(client, f"http://127.0.0.1:{self.settings.gateway_port}")
        self.senders.append(sender)
        simulator = SimulatorReplies(client, f"http://127.0.0.1:{self.settings.helpdesk_sim_port}")
        back_office = SimulatorBackOffice(client, f"http://127.0.0.1:{self.settings.helpdesk_sim_port}")
        await self.open_back_offices(back_office)
        gate = asyncio.Semaphore(LIVE_CONCURRENCY)
        async with ResolutionWatcher(self.settings.bootstrap) as watcher:
            self.watcher = watcher
            first_wave, second_wave, after_swap = [], [], []
            for plan in self.plans:
                tickets = [self.live_ticket(plan, d, sender, simulator, watcher, back_office) for d in plan.live]
                half = max(1, (len(tickets) - self.mode.sizes.after_swap_tickets) // 2)
                first_wave += tickets[:half]
                second_wave += tickets[half:len(tickets) - self.mode.sizes.after_swap_tickets]
                after_swap += tickets[len(tickets) - self.mode.sizes.after_swap_tickets:]
            with self.progress() as progress:
                await self.play(first_wave, progress, "live tickets (first wave)", gate)
            self.console.print(live_table(self.results, "live tickets so far"))

            self.step(5, "more resolved tickets; the adapters refresh and hot-swap under live traffic")
            for plan in self.plans:
                path = self.write_export(plan.tenant_id, "refresh", plan.refresh)
                await asyncio.to_thread(self.commands.import_history, "sgd", path, plan.tenant_id)
            with self.progress() as progress:
                wanted = {t: v + 1 for t, v in self.live_versions.items()}
                during = asyncio.create_task(
                    self.play(second_wave, progress, "live tickets during training", gate))
                samples = {p.tenant_id: p.history_trainable + p.refresh_trainable for p in self.plans}
                await self.wait_for_versions(wanted, samples, progress, "refresh")
                await during
                await asyncio.sleep(2.0)  # the resolver applies the publication from adapters.published
                await self.play(after_swap, progress, "live tickets after the swap", gate)
            self.print_versions()
            self.print_training_budget({t: v + 1 for t, v in self.live_versions.items()}, "what each refresh used")
        self.console.print(live_table(self.results, "all live tickets"))
        for plan in self.plans:
            mine = [r for r in self.results if r.tenant_id == plan.tenant_id]
            self.summary.setdefault(plan.tenant_id, {})["escalations"] = {
                "tickets": len(mine), "escalated": sum(r.ai_escalated for r in mine),
                "by_reason": dict(escalation_kinds(mine))}
            actions: Counter = Counter()
            for result in mine:
                actions.update(result.actions)
            self.summary[plan.tenant_id]["actions"] = {
                "by_outcome": dict(actions), "replies_after_results": [a for r in mine for a in r.action_replies][:5]}
            verdicts = [v for r in mine for v in r.verdicts]
            self.summary[plan.tenant_id]["judged"] = {
                "answers": len(verdicts), "right": sum(v.right for v in verdicts),
                "push_backs": sum(r.push_backs for r in mine), "gave_up": sum(r.gave_up for r in mine)}
        replies = action_replies_table(self.results)
        if replies is not None:
            self.console.print(replies)

    def print_versions(self) -> None:
        table = Table("tenant", "live at go-live", "current now", "replies by adapter version",
                      title="hot swap: which adapter answered the live tickets")
        for tenant_id, before in self.live_versions.items():
            now = current_version(self.data_dir, tenant_id)
            by_version = self.watcher.answered_by(tenant_id)
            self.summary.setdefault(tenant_id, {})["swap"] = {"live_at_go_live": before, "current": now,
                                                              "answered_by": by_version}
            answered = ", ".join(f"{name}: {n}" for name, n in by_version.items())
            table.add_row(tenant_id, f"v{before}", f"v{now}", answered or "—")
        self.console.print(table)

    # -- 6: the bill --------------------------------------------------------------------------------

    async def report(self, client: httpx.AsyncClient) -> None:
        self.step(6, "invoices, resolution and escalation rates, CSAT — from ClickHouse via the analytics"
                     " API")
        api = f"http://127.0.0.1:{self.settings.api_port}"
        months = sorted({month_of(r.created_at.ToDatetime(tzinfo=timezone.utc))
                         for r in self.watcher.by_request.values()}) or [month_of(datetime.now(timezone.utc))]
        today = datetime.now(timezone.utc).date()
        outcomes = Table("tenant", "AI replies", "confirmed", "escalated", "reopened", "pending",
                         "resolution rate", "escalation rate", "CSAT (n)", title="resolutions")
        bill = Table("tenant", "month", "billable", "free", "charged", "unit price", "credits", "total",
                     title="invoices")
        with self.console.status("waiting for metering to settle every resolution…"):
            for tenant_id, tenant in self.tenants.items():
                analytics = AnalyticsClient(client, api, tenant.api_key)
                invoices = await analytics.wait_for_resolutions(
                    tenant_id, months, self.watcher.count(tenant_id), timeout=180)
                usage = await analytics.usage(tenant_id, (today - timedelta(days=31)).isoformat(),
                                              today.isoformat())
                figures = tenant_figures(list(invoices.values()), usage)
                outcomes.add_row(tenant_id, *figures.cells())
                self.summary.setdefault(tenant_id, {}).update(
                    resolutions=figures.resolutions, resolution_rate=figures.resolution_rate,
                    escalation_rate=figures.escalation_rate, csat_average=figures.csat_average,
                    csat_count=figures.csat_count, invoices=invoices)
                for month, invoice in invoices.items():
                    bill.add_row(tenant_id, month, *invoice_cells(invoice))
        self.console.print(outcomes)
        self.console.print(bill)
        self.console.print("[dim]Pending: solved tickets are billed as 'assumed' once their 24 h window"
                           " closes"
                           " quietly; confirmed = the customer said so or rated 4-5.[/]")
        for tenant_id, tenant in self.tenants.items():
            self.console.print(f"dashboard of {tenant_id}: {api}/tenants/{tenant_id}?key={tenant.api_key}")
        admin_api_key(self.data_dir)  # created on first use
        self.console.print("[dim]The operator's admin key (reads every tenant) is in"
                           f" {self.data_dir / 'admin_key'}.[/]")

    # -- all of it ----------------------------------------------------------------------------------

    async def run_async(self) -> None:
        async with httpx.AsyncClient() as client, TrainableSamples(self.settings.bootstrap,
                                                                   self.holdout_fraction) as samples:
            self.samples = samples
            await self.send_history(client)
            await self.train_and_preview()
            await self.live_and_refresh(client)
            await self.report(client)

    def write_summary(self) -> Path:
        live = Counter()
        for result in self.results:
            live[result.tenant_id] += 1
        for plan in self.plans:
            self.summary.setdefault(plan.tenant_id, {})["dialogues"] = {
                "history": len(plan.history), "refresh": len(plan.refresh), "live": len(plan.live),
                "live_played": live[plan.tenant_id]}
        path = self.settings.path("demo", "summary.json")
        acknowledged = [event_id for sender in self.senders for event_id in sender.acknowledged]
        path.write_text(json.dumps({"mode": self.mode.name, "tenants": self.summary,
                                    "webhooks_acknowledged": acknowledged}, indent=2, default=str))
        return path

    def run(self) -> None:
        self.start_stack()
        asyncio.run(self.run_async())
        self.console.print(f"[dim]What this run showed, as JSON: {self.write_summary()}[/]")
        write_marker(self.data_dir, status="complete", finished_at=time.time(), mode=self.mode.name)
        self.console.rule(f"[green]demo complete in {time.monotonic() - self.started:.0f}s[/]")
        self.console.print("The stack keeps running: `clonedesk status` shows it, `clonedesk down` stops it.")



def run(settings: Settings, quick: bool = False, ephemeral: bool = False,
        console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log or a captured run: wide enough for the tables
    Demo(settings, QUICK_MODE if quick else FULL_MODE, ephemeral, console).run()
