"""What a teacher does on the box, on top of BoxService and independent of HTTP.

The review queue is derived from the outbox each time (nothing else to keep in
step): a low-confidence grade waits until a ``teacher_label`` record points at
it, a forwarded question until a ``teacher_answer`` does. What a teacher is
offered is the top of ``appliance.review``'s order (most uncertain first, or a
seeded random sample), capped by what is left of their daily review budget.
Teacher actions are interaction records written durably through the outbox,
like a student's, so the centre receives the gold labels with everything else.
Labels and answers copy the original's student pseudonym, so an opt-out drops
them too before export (they hold the student's text); they name the teacher
who made them by a pseudonym in ``texts.comment`` (see ``reviewer_id``), which
is what the daily budget counts.

Content edits are read-modify-write of the whole content file; a lock file keeps
two teachers (or two workers) from overwriting each other's edit.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import tempfile
import time
from pathlib import Path

from .content import Exercise, FaqEntry, read_exercises, read_faq
from .errors import BundleError, FormatError, NotFound
from .fsutil import file_lock
from .ids import id_timestamp_ms, is_uuid7
from .privacy import load_secret
from .records import InteractionRecord, parse_timestamp
from .review import select_for_review, uncertainty
from .service import BoxService

LABELS = ("correct", "incorrect")
QUEUE_LIMIT = 200          # a page a teacher can work through; the rest waits its turn
REVIEW_KINDS = ("teacher_label", "teacher_answer")
REVIEWER_RE = re.compile(r"t-[0-9a-f]{24}")
IMPORT_MODES = ("merge", "replace")


# --- dashboard ---------------------------------------------------------------------------
@dataclasses.dataclass
class ClassActivity:
    class_id: str
    answers: int = 0
    correct: int = 0
    students: set = dataclasses.field(default_factory=set)

    @property
    def share_correct(self) -> float:
        return self.correct / self.answers if self.answers else 0.0


def positive_label(service: BoxService) -> str:
    """The current model's "correct" label (records carry the label string, not a flag)."""
    model = service.loaded_model()
    if model is not None:
        return model.manifest.positive_label
    from .bundle import read_manifest_unverified
    from .models import current_bundle_dir

    try:
        return read_manifest_unverified(current_bundle_dir(service.config.models_dir)).positive_label
    except BundleError:
        return "correct"


def local_date(created_at: str) -> dt.date:
    return parse_timestamp(created_at).astimezone().date()


def today_activity(service: BoxService, today: dt.date | None = None) -> list[ClassActivity]:
    """Answers per class today (box local time): count, how many correct, how many students.
    A teacher's label overrides the model's grade."""
    today = today or dt.date.today()
    positive = positive_label(service)
    answers: dict[str, InteractionRecord] = {}
    labels: dict[str, str] = {}
    midnight = dt.datetime.combine(today, dt.time()).astimezone().timestamp()
    for record in service.outbox.records(since=midnight):  # stored today: written since
        if record.kind == "answer" and local_date(record.created_at) == today:
            answers[record.id] = record
        elif record.kind == "teacher_label" and record.ref_id:
            labels[record.ref_id] = record.teacher_label
    classes: dict[str, ClassActivity] = {}
    for record in answers.values():
        activity = classes.setdefault(record.class_id or "-", ClassActivity(record.class_id or "-"))
        activity.answers += 1
        activity.correct += labels.get(record.id, "correct" if record.prediction == positive
                                       else "incorrect") == "correct"
        if record.student:
            activity.students.add(record.student)
    return sorted(classes.values(), key=lambda a: a.class_id)


# --- review queue ----------------------------------------------------------------------
@dataclasses.dataclass
class ReviewQueue:
    items: list[InteractionRecord]       # offered now, in review order (first: review first)
    more: int = 0                        # waiting beyond what is offered (budget or page)
    budget: int | None = None            # the daily budget per teacher; None: no limit
    used: int = 0                        # reviews this teacher made today
    strategy: str = "uncertainty"
    scores: dict[str, float] = dataclasses.field(default_factory=dict)  # id -> uncertainty

    @property
    def grades(self) -> list[InteractionRecord]:      # low-confidence answers, no label yet
        return [r for r in self.items if r.kind != "question"]

    @property
    def questions(self) -> list[InteractionRecord]:   # forwarded questions, no answer yet
        return [r for r in self.items if r.kind == "question"]

    @property
    def size(self) -> int:
        return len(self.items) + self.more

    @property
    def left(self) -> int | None:
        """Reviews left to this teacher today; None without a budget."""
        return None if self.budget is None else max(0, self.budget - self.used)

    @property
    def spent(self) -> bool:
        return self.left == 0


def is_forwarded(record: InteractionRecord) -> bool:
    return record.kind == "question" and not record.prediction and not record.texts.get("answer")


def needs_review(record: InteractionRecord, review_below: float) -> bool:
    """A grade the model was unsure of, or a question it could not answer."""
    return (record.kind == "answer" and record.confidence is not None
            and record.confidence < review_below) or is_forwarded(record)


def reviewer_id(secret: bytes, username: str) -> str:
    """The teacher's pseudonym in the records they write: ``t-`` + 24 hex of an HMAC with
    the box's pseudonym secret. Stable per school (the secret is shared), so the centre
    can tell reviewers apart without learning who they are."""
    digest = hmac.new(secret, b"teacher\x00" + username.encode("utf-8"), hashlib.sha256)
    return "t-" + digest.hexdigest()[:24]


def teacher_reviewer_id(service: BoxService, username: str) -> str:
    return reviewer_id(load_secret(service.config.secrets_dir), username)


def reviewer_of(record: InteractionRecord) -> str | None:
    """Who made a teacher record (None: written before reviewers were recorded)."""
    comment = record.texts.get("comment", "")
    return comment if record.kind in REVIEW_KINDS and REVIEWER_RE.fullmatch(comment) else None


def review_queue(service: BoxService, teacher: str | None = None, *,
                 today: dt.date | None = None, limit: int = QUEUE_LIMIT) -> ReviewQueue:
    """What ``teacher`` (a username) is offered to review now. Candidates: unlabelled
    low-confidence answers and unanswered forwarded questions; offered: the top of the
    configured strategy's order, at most the teacher's budget left today (a review is
    one record labelled or answered by them today, box local time; changing one's own
    label is not another). Without a teacher, nobody's reviews are subtracted."""
    config = service.config
    today = today or dt.date.today()
    reviewer = teacher_reviewer_id(service, teacher) if teacher else None
    since = (time.time() - config.review_window_days * 86_400
             if config.review_window_days else None)
    candidates, done, reviewed_today = [], set(), set()
    for record in service.outbox.records(since=since):
        if record.kind in REVIEW_KINDS and record.ref_id:
            done.add(record.ref_id)
            if (reviewer and reviewer_of(record) == reviewer
                    and local_date(record.created_at) == today):
                reviewed_today.add(record.ref_id)
        elif needs_review(record, config.review_below) and (
                since is None or parse_timestamp(record.created_at).timestamp() >= since):
            candidates.append(record)
    candidates = [r for r in candidates if r.id not in done]
    queue = ReviewQueue([], budget=config.review_daily_budget or None,  # 0: no limit
                        used=len(reviewed_today),
                        strategy=config.review_strategy)
    cap = limit if queue.left is None else min(limit, queue.left)
    # The random order is seeded per box and day: a reload shows the same sample, and
    # each day draws afresh from what is still waiting.
    queue.items = select_for_review(candidates, budget=cap, strategy=config.review_strategy,
                                    seed=f"{config.box_id}/{today.isoformat()}")
    queue.more = len(candidates) - len(queue.items)
    queue.scores = {r.id: uncertainty(r) for r in queue.items}
    return queue


def find_record(service: BoxService, record_id: str, kinds: tuple[str, ...]) -> InteractionRecord:
    """The stored record with this id and one of these kinds; NotFound otherwise."""
    record = service.outbox.find(record_id)
    if record is None and is_uuid7(record_id or "") and id_timestamp_ms(record_id) <= \
            time.time() * 1000:
        # a box clock set back by more than find()'s slack: look through everything (a
        # signed-in teacher's click, not a student's request)
        record = next((r for r in service.outbox.records() if r.id == record_id), None)
    if record is not None and record.kind in kinds:
        return record
    raise NotFound(f"no {' or '.join(kinds)} record with id {record_id[:40]!r}",
                   hint="it may have been removed after syncing; reload the review queue")


def label_grade(service: BoxService, record_id: str, label: str,
                teacher: str | None = None) -> InteractionRecord:
    """Confirm or correct a grade: a durable ``teacher_label`` record pointing at it,
    naming ``teacher`` (a username) by their reviewer pseudonym.
    The same label sent twice (a double click) is stored once."""
    if label not in LABELS:
        raise FormatError(f"'label' must be one of {', '.join(LABELS)}", field="label")
    original = find_record(service, record_id, ("answer", "grade"))
    return service.outbox.append(InteractionRecord.create(
        box_id=service.config.box_id, school_id=service.config.school_id,
        kind="teacher_label", ref_id=original.id, teacher_label=label,
        texts=_with_reviewer(service, dict(original.texts), teacher), **_copied(original),
        model_id=original.model_id, model_version=original.model_version,
        prediction=original.prediction, confidence=original.confidence,
        idempotency_key=f"tl-{original.id}-{label}"))


def _with_reviewer(service: BoxService, texts: dict, teacher: str | None) -> dict:
    # texts.comment, not a new field: records stay schema_version 1, readable everywhere.
    if teacher:
        texts["comment"] = teacher_reviewer_id(service, teacher)
    return texts


def _copied(original: InteractionRecord) -> dict:
    return {name: getattr(original, name) for name in
            ("class_id", "subject", "grade_band", "student", "exercise_id")}


def faq_id_for(record_id: str) -> str:
    """One FAQ id per question (the UUIDv7's random tail), so answering again replaces it."""
    return "faq-t-" + record_id.replace("-", "")[-12:]


def answer_question(service: BoxService, record_id: str, answer: str, subject: str,
                    grade_band: str, teacher: str | None = None) -> tuple[InteractionRecord, FaqEntry]:
    """Answer a forwarded question: the FAQ gains it, then a ``teacher_answer`` record
    (naming ``teacher`` by their reviewer pseudonym) takes it off the queue. In that order, so a failure between the two leaves the
    question queued and answering again replaces the same FAQ entry."""
    original = find_record(service, record_id, ("question",))
    entry = FaqEntry.from_dict({"id": faq_id_for(original.id), "subject": subject,
                                "grade_band": grade_band,
                                "question": original.texts.get("question", ""),
                                "answer": answer})
    editor = ContentEditor(service)
    with editor.locked():
        editor.write(editor.exercises(), _upsert(editor.faq(), [entry]))
    record = service.outbox.append(InteractionRecord.create(
        box_id=service.config.box_id, school_id=service.config.school_id,
        kind="teacher_answer", ref_id=original.id,
        texts=_with_reviewer(service, {"question": entry.question, "answer": entry.answer},
                             teacher),
        **{**_copied(original), "subject": subject, "grade_band": grade_band},
        idempotency_key=f"ta-{original.id}"))
    return record, entry


# --- exercises and FAQ -----------------------------------------------------------------
def _upsert(items: list, new: list) -> list:
    """``items`` with ``new`` put in by id: same id replaced in place, others appended."""
    by_id = {item.id: item for item in new}
    kept = [by_id.pop(item.id, item) for item in items]
    return kept + [item for item in new if item.id in by_id]


class ContentEditor:
    """Edits of the class content, each one whole-file and under the content lock."""

    def __init__(self, service: BoxService):
        self.store = service.content
        self.path = Path(service.config.content_path)

    def locked(self):
        return file_lock(self.path.with_name(self.path.name + ".lock"))

    def exercises(self) -> list[Exercise]:
        return self.store.exercises() if self.path.exists() else []

    def faq(self) -> list[FaqEntry]:
        return self.store.faq() if self.path.exists() else []

    def write(self, exercises: list[Exercise], faq: list[FaqEntry]) -> None:
        self.store.replace(exercises, faq)

    def add_exercise(self, exercise: Exercise) -> None:
        with self.locked():
            exercises = self.exercises()
            if any(e.id == exercise.id for e in exercises):
                raise FormatError(f"an exercise with id {exercise.id!r} already exists",
                                  field="id", hint="choose another id, or delete the old one")
            self.write(exercises + [exercise], self.faq())

    def delete_exercise(self, exercise_id: str) -> None:
        with self.locked():
            exercises = self.exercises()
            kept = [e for e in exercises if e.id != exercise_id]
            if len(kept) == len(exercises):
                raise NotFound(f"no exercise with id {exercise_id[:64]!r}")
            self.write(kept, self.faq())

    def delete_faq(self, faq_id: str) -> None:
        with self.locked():
            faq = self.faq()
            kept = [f for f in faq if f.id != faq_id]
            if len(kept) == len(faq):
                raise NotFound(f"no FAQ entry with id {faq_id[:64]!r}")
            self.write(self.exercises(), kept)

    def import_csv(self, kind: str, data: bytes, mode: str = "merge") -> int:
        """Import an uploaded exercises.csv or faq.csv; all or nothing. ``merge`` adds
        and updates by id; ``replace`` makes the file the whole list. Returns the count."""
        if kind not in ("exercises", "faq"):
            raise FormatError("'kind' must be exercises or faq", field="kind")
        if mode not in IMPORT_MODES:
            raise FormatError(f"'mode' must be one of {', '.join(IMPORT_MODES)}", field="mode")
        items = parse_csv(kind, data)
        with self.locked():
            exercises, faq = self.exercises(), self.faq()
            if kind == "exercises":
                exercises = items if mode == "replace" else _upsert(exercises, items)
            else:
                faq = items if mode == "replace" else _upsert(faq, items)
            self.write(exercises, faq)
        return len(items)


def parse_csv(kind: str, data: bytes) -> list:
    """Validate an upload with the box's own CSV readers (messages name the line and field).
    They read files, so the upload goes through a private temporary one."""
    name = f"{kind}.csv"
    with tempfile.TemporaryDirectory(prefix="chalkbox-import-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return read_exercises(path) if kind == "exercises" else read_faq(path)
        except FormatError as exc:
            raise FormatError(exc.message.replace(str(path), name), field=exc.field,
                              hint=exc.hint) from None


# --- sync ----------------------------------------------------------------------------------
def sync_overview(service: BoxService) -> dict:
    """What the sync page shows: records not yet at the centre, the last network session."""
    from .sync.session import SESSION_FILE, load_state

    config = service.config
    unsynced = sum(1 for _ in service.outbox.entries(service.outbox.acked_through()))
    state = load_state(config) if (config.sync_dir / SESSION_FILE).is_file() else None
    return {"unsynced": unsynced, "state": state, "central_url": config.central_url}


def worker_tasks(config):
    """The worker's task module, if this process may enqueue for this box's worker.

    ``appliance.tasks`` binds to the queue of $CHALKBOX_DATA_DIR when imported; gunicorn
    sets it to the box's data dir. A web process must not change its environment, so
    when the variable names another box (or none), there is no queue: None."""
    import os

    env = os.environ.get("CHALKBOX_DATA_DIR")
    if not env or Path(env).resolve() != Path(config.data_dir).resolve():
        return None
    from . import tasks

    return tasks


def enqueue_usb_sync(config, stick: str) -> str | None:
    """Queue the worker's "sync to USB stick" for one of the sticks mounted now
    (never a path from a form). Returns the task id, or None without a queue."""
    from .sync.usb import list_sticks

    sticks = {str(p): p for p in list_sticks(Path(config.usb_mount_root))}
    if stick not in sticks:
        raise NotFound(f"no USB stick at {stick[:200]!r}",
                       hint="plug the stick in, wait for it to appear, and reload the page")
    tasks = worker_tasks(config)
    if tasks is None:
        return None
    return tasks.usb_sync(str(sticks[stick])).id


def usb_task_result(config, task_id: str) -> str:
    """A queued USB sync's outcome, in words."""
    tasks = worker_tasks(config)
    if tasks is None:
        return "unknown (worker queue unavailable)"
    from huey.exceptions import TaskException

    try:
        result = tasks.huey.result(task_id, preserve=True)
    except TaskException as exc:
        return f"failed: {exc.metadata.get('error', 'see the worker log')}"
    if result is None:
        return "waiting for the worker (is it running?)"
    return f"done: {result.get('exported', 0)} records written to the stick"
