"""The box's content store: parsed once per version of the file, never stale."""
from appliance.content import demo_content_dir, read_exercises, read_faq
from appliance.store import ContentStore


def test_every_reader_sees_a_replace_at_once(tmp_path):
    exercises = read_exercises(demo_content_dir() / "exercises.csv")
    faq = read_faq(demo_content_dir() / "faq.csv")
    path = tmp_path / "content.json"
    writer, reader = ContentStore(path), ContentStore(path)  # e.g. the CLI and a web worker
    assert reader.exercises() == [] and reader.exercise(exercises[0].id) is None

    writer.replace(exercises, faq)
    assert reader.exercises() == exercises and reader.faq() == faq
    assert reader.exercise(exercises[3].id) == exercises[3]
    assert reader.exercise("no-such-id") is None

    edited = [exercises[0].__class__(**{**exercises[0].__dict__, "question": "Changed?"})]
    writer.replace(edited, faq[:2])  # same second, similar size: the new inode tells
    assert reader.exercise(exercises[0].id).question == "Changed?"
    assert reader.exercise(exercises[3].id) is None
    assert reader.faq() == faq[:2]


def test_the_parsed_content_is_reused_while_the_file_is_unchanged(tmp_path):
    exercises = read_exercises(demo_content_dir() / "exercises.csv")
    store = ContentStore(tmp_path / "content.json")
    store.replace(exercises, [])
    first = store.exercise(exercises[0].id)
    assert store.exercise(exercises[0].id) is first  # no re-parse per request
    returned = store.exercises()
    returned.clear()  # a caller's list is its own
    assert store.exercises() == exercises
