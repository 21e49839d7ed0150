"""Tests of a setting's value that the settings' declarations share (config's table of ranges, the augmentations'
own settings): each takes the value and says whether it is usable."""


def number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def positive(v):
    return v > 0


def at_least(low):
    return lambda v: v >= low


def chance(v):
    """A probability: from 0 (never) to 1 (always)."""
    return 0 <= v <= 1


def value_range(v):
    """[lowest, highest]: two numbers, in order."""
    return isinstance(v, list) and len(v) == 2 and all(map(number, v)) and v[0] <= v[1]
