"""Containers: `Sequential` (a pipeline), `ModuleList` and `ModuleDict` (registered
collections, e.g. the blocks of a transformer)."""

from __future__ import annotations

from minigrad.nn.module import Module


def _check_module(container: str, key, value) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{container}: entry {key!r} must be a Module, got "
                        f"{type(value).__name__}")
    return value


class ModuleList(Module):
    """A list of modules, registered under the names '0', '1', ..."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def _index(self, index: int) -> str:
        n = len(self._modules)
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for "
                             f"length {n}")
        return str(index % n)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[self._index(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self._modules[self._index(index)] = _check_module(type(self).__name__, index, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module):
        name = str(len(self._modules))
        self._modules[name] = _check_module(type(self).__name__, name, module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, _check_module(type(self).__name__, index, module))
        self._modules.clear()
        self.extend(items)


class Sequential(ModuleList):
    """Calls its modules in order, each on the previous one's output."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*list(self._modules.values())[index])
        return super().__getitem__(index)


class ModuleDict(Module):
    """A dict of modules, registered under their keys."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', "
                           f"got {key!r}")
        self._modules[key] = _check_module("ModuleDict", key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module
