"""The trainer's wiring: the worker over this data dir's sample buffer, scheduler progress and version
registry, with the settings' recipe (`clonedesk trainer` runs it; tests build `TrainerWorker` or call
`run_training` with their own stores)."""

from __future__ import annotations

from clonedesk.core.settings import Settings
from clonedesk.trainer.adapters.buffer import ProgressStore, SampleBuffer
from clonedesk.trainer.adapters.version_registry import AdapterRegistry
from clonedesk.trainer.entrypoints.worker import TrainerWorker
from clonedesk.trainer.settings import TrainerSettings


def trainer_worker(settings: Settings, *, progress_bars: bool = False) -> TrainerWorker:
    trainer_settings = TrainerSettings()
    root = settings.resolved_data_dir / "trainer"
    return TrainerWorker(settings, trainer_settings, progress_bars=progress_bars,
                         buffer=SampleBuffer(root, trainer_settings.holdout_fraction), progress=ProgressStore(root),
                         registry=AdapterRegistry(settings.resolved_data_dir))
