"""The one reader of flat settings dataclasses (augmentation, text) from a project file."""

from dataclasses import dataclass

import pytest

from ml.data.augment import AugmentSettings
from ml.data.settings import settings_from_dict
from ml.data.text import TextSettings
from ml.errors import DataError


@dataclass
class _Knobs:
    on: bool = False
    count: int = 3
    rate: float = 0.5


def _read(d):
    return settings_from_dict(_Knobs, d, setting="The knob", not_a_dict="Not knobs.")


def test_known_fields_typed_and_defaults():
    assert _read(None) == _Knobs()
    assert _read({"on": True, "count": 7.0, "rate": 2, "future": "ignored"}) == _Knobs(True, 7, 2.0)
    assert isinstance(_read({"count": 7.0}).count, int)
    assert isinstance(_read({"rate": 2}).rate, float)


@pytest.mark.parametrize("d, message", [
    ([1, 2], "Not knobs."),
    ({"on": 1}, "The knob 'on' must be true or false (got 1)."),
    ({"count": 2.5}, "The knob 'count' must be a whole number (got 2.5)."),
    ({"count": True}, "The knob 'count' must be a whole number (got True)."),
    ({"rate": "fast"}, "The knob 'rate' must be a number (got 'fast')."),
    ({"rate": float("nan")}, "The knob 'rate' must be a number (got nan)."),
])
def test_wrong_types_say_which_setting(d, message):
    with pytest.raises(DataError) as info:
        _read(d)
    assert str(info.value) == message


def test_augmentation_and_text_settings_read_through_it():
    assert AugmentSettings.from_dict({"hflip": True, "rotation": 10}) == AugmentSettings(
        hflip=True, rotation=10.0)
    assert TextSettings.from_dict({"lowercase": False, "max_vocab": 500.0}) == TextSettings(
        lowercase=False, max_vocab=500)
    with pytest.raises(DataError, match="The augmentation setting 'hflip' must be true or false"):
        AugmentSettings.from_dict({"hflip": "yes"})
    with pytest.raises(DataError, match="The text setting 'min_count' must be a whole number"):
        TextSettings.from_dict({"min_count": "2"})
    with pytest.raises(DataError, match="remove them to use no augmentation"):
        AugmentSettings.from_dict("flip")
