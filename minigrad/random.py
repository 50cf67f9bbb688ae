"""Seedable random number generators, one per device, drawing on the device itself."""

from __future__ import annotations

from minigrad import backends


class Generator:
    """A random stream on one device. Pass it as `generator=` to creation functions
    and dropout; its state can be saved and restored (checkpoints do this)."""

    def __init__(self, seed: int | None = None, device=None):
        self.device = backends.get_device(device)
        self.seed = seed
        self._rng = self.device.generator(seed)

    def manual_seed(self, seed: int) -> Generator:
        self.seed = seed
        self._rng = self.device.generator(seed)
        return self

    def normal(self, shape, dtype="float32"):
        return self.device.random_normal(self._rng, tuple(shape), dtype)

    def uniform(self, shape, dtype="float32"):
        """Uniform samples in [0, 1)."""
        return self.device.random_uniform(self._rng, tuple(shape), dtype)

    def integers(self, low: int, high: int, shape, dtype="int64"):
        """Uniform integers in [low, high)."""
        return self.device.random_integers(self._rng, low, high, tuple(shape), dtype)

    def get_state(self):
        return self.device.generator_state(self._rng)

    def set_state(self, state) -> None:
        self.device.set_generator_state(self._rng, state)


_default_generators: dict = {}
_default_seed: list = [None]


def default_generator(device=None) -> Generator:
    """The generator used when none is passed: one per device, seeded by `manual_seed`."""
    device = backends.get_device(device)
    gen = _default_generators.get(device.name)
    if gen is None:
        gen = _default_generators[device.name] = Generator(_default_seed[0], device)
    return gen


def manual_seed(seed: int) -> None:
    """Reseed the default generator of every device."""
    _default_seed[0] = seed
    _default_generators.clear()
