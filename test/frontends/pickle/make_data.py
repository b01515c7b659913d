"""Writes the pickles test/frontends/pickle/*.test.ts read (run: python3 make_data.py; no torch needed).

Fake `torch`, `torch._utils`, `collections` stand-ins make pickle emit exactly the opcodes PyTorch's own
pickler emits for tensors (GLOBAL torch._utils _rebuild_tensor_v2, BINPERSID ('storage', torch.FloatStorage, ...)).
"""
import io, os, pickle, struct, sys, types, json, collections

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
os.makedirs(HERE, exist_ok=True)

def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)

# 1. Plain values in every protocol.
plain = {
    "ints": [0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31, 2**62, -2**62, 2**70, -2**70],
    "floats": [0.5, -1.25, 1e-5, float("inf")],
    "str": "héllo\nworld",
    "bytes": b"\x00\x01\xff",
    "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
    "bools": [True, False, None],
    "nested": {"a": {"b": [1, {"c": (2.0,)}]}},
    "intkeys": {1: "one", 2: "two"},
    "set": {1, 2, 3},
    "frozenset": frozenset([4]),
    "bytearray": bytearray(b"ab"),
}
for p in range(0, 6):
    write(f"plain_p{p}.pkl", pickle.dumps(plain, protocol=p))

# 2. Shared references (memo).
shared = [1, 2]
write("shared.pkl", pickle.dumps({"x": shared, "y": shared}, protocol=2))

# 3. Malicious pickles: each names a global that would run code.
class Evil:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args
    def __reduce__(self):
        return (self.fn, self.args)

import subprocess, builtins
for p in (0, 2, 4):
    write(f"evil_system_p{p}.pkl", pickle.dumps(Evil(os.system, ("echo pwned",)), protocol=p, fix_imports=False))
write("evil_eval.pkl", pickle.dumps(Evil(builtins.eval, ("1+1",)), protocol=2, fix_imports=False))
write("evil_popen.pkl", pickle.dumps([1, Evil(subprocess.Popen, (["true"],))], protocol=2, fix_imports=False))
# a forbidden global nested deep inside an otherwise fine structure, by STACK_GLOBAL (protocol 4)
write("evil_nested_p4.pkl", pickle.dumps({"a": [1, 2, {"b": Evil(builtins.exec, ("pass",))}]}, protocol=4))

# 4. Torch-style tensors with fake torch modules.
torch = types.ModuleType("torch"); sys.modules["torch"] = torch
tutils = types.ModuleType("torch._utils"); sys.modules["torch._utils"] = tutils
torch._utils = tutils

def _rebuild_tensor_v2(*a):
    raise RuntimeError("never called")
_rebuild_tensor_v2.__module__ = "torch._utils"
tutils._rebuild_tensor_v2 = _rebuild_tensor_v2

class FloatStorage: pass
class LongStorage: pass
class HalfStorage: pass
for c in (FloatStorage, LongStorage, HalfStorage):
    c.__module__ = "torch"; c.__qualname__ = c.__name__; setattr(torch, c.__name__, c)

class Storage:
    def __init__(self, cls, key, numel):
        self.cls, self.key, self.numel = cls, key, numel

class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))

class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None

def torch_dumps(obj):
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(obj)
    return buf.getvalue()

s0 = Storage(FloatStorage, "0", 12)   # floats 0..11
s1 = Storage(LongStorage, "1", 3)     # int64 [7, -8, 9]
s2 = Storage(HalfStorage, "2", 2)     # half [1.0, -2.0]
obj = {
    "w": Tensor(s0, 0, (3, 4), (4, 1)),
    "wt": Tensor(s0, 0, (4, 3), (1, 4)),       # transposed view of the same storage
    "slice": Tensor(s0, 5, (2,), (2,)),        # elements 5, 7
    "bcast": Tensor(s0, 1, (2, 3), (0, 1)),    # stride 0
    "scalar": Tensor(s0, 11, (), ()),
    "ids": Tensor(s1, 0, (3,), (1,)),
    "half": Tensor(s2, 0, (2,), (1,)),
}
write("tensors.pkl", torch_dumps(obj))
write("tensors_0", struct.pack("<12f", *[float(i) for i in range(12)]))
write("tensors_1", struct.pack("<3q", 7, -8, 9))
write("tensors_2", struct.pack("<2e", 1.0, -2.0))
print("wrote", sorted(os.listdir(HERE)))
