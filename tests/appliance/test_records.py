import pytest

from appliance.errors import FormatError
from appliance.ids import id_timestamp_ms, is_uuid7, new_id
from appliance.records import InteractionRecord


def make(**changes):
    fields = dict(box_id="box-1", school_id="school-1", kind="answer", class_id="c1",
                  subject="science", grade_band="3-5", student="s-abc", exercise_id="ex-1",
                  texts={"question": "Q?", "reference": "R.", "answer": "A."},
                  model_id="grade", model_version="1", prediction="correct", confidence=0.9)
    fields.update(changes)
    return InteractionRecord.create(**fields)


def test_ids_are_unique_time_ordered_uuid7():
    ids = [new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(is_uuid7(i) for i in ids[:100])
    assert id_timestamp_ms(ids[-1]) >= id_timestamp_ms(ids[0])


def test_record_round_trips_through_dict():
    record = make()
    assert InteractionRecord.from_dict(record.to_dict()) == record
    assert record.schema_version == 1
    assert record.created_at.endswith("Z")


@pytest.mark.parametrize("field, value", [
    ("kind", "dance"), ("id", "not-a-uuid"), ("box_id", ""), ("box_id", 7),
    ("confidence", 1.5), ("confidence", "high"), ("created_at", "yesterday"),
    ("created_at", "2026-01-01T00:00:00"), ("feedback", "meh"), ("schema_version", 99),
])
def test_bad_field_is_refused_by_name(field, value):
    data = make().to_dict()
    data[field] = value
    with pytest.raises(FormatError) as info:
        InteractionRecord.from_dict(data)
    assert info.value.field == field


def test_missing_required_field_and_unknown_field_are_named():
    data = make().to_dict()
    del data["school_id"]
    with pytest.raises(FormatError, match="school_id"):
        InteractionRecord.from_dict(data)
    with pytest.raises(FormatError, match="nickname"):
        InteractionRecord.from_dict({**make().to_dict(), "nickname": "Ana"})


def test_oversize_text_is_refused():
    data = make().to_dict()
    data["texts"]["answer"] = "x" * 2001
    with pytest.raises(FormatError) as info:
        InteractionRecord.from_dict(data)
    assert info.value.field == "texts.answer"
