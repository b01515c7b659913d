import torch, json, sys
out = sys.argv[1]
mine = json.load(open("test/ops/_schemas.json"))
rep = open(out + "/compare.txt", "w")
def norm_default(a):
    if not a.has_default_value(): return None
    return repr(a.default_value)
names = set()
for d in mine:
    _, base, ov = d["name"].split(".")
    names.add((base, ov))
    try:
        op = getattr(getattr(torch.ops.aten, base), ov)
    except Exception as e:
        rep.write(f"MISSING {d['name']}\n"); continue
    s = op._schema
    ta = [(a.name, str(a.type), norm_default(a), a.kwarg_only) for a in s.arguments]
    ma = [(a["name"], a["type"], a.get("default"), a.get("kwargOnly", False)) for a in d["schema"]]
    if [x[0] for x in ta] != [x[0] for x in ma] or [x[3] for x in ta] != [x[3] for x in ma]:
        rep.write(f"NAMES {d['name']}\n  torch {ta}\n  mine  {ma}\n")
    else:
        for (tn, tt, tdef, _), (mn, mt, mdef, _) in zip(ta, ma):
            if (tdef is None) != (mdef is None):
                rep.write(f"DEFAULT {d['name']} {tn}: torch {tdef} mine {mdef}\n")
            elif tdef is not None:
                rep.write(f"DEFVAL {d['name']} {tn}: torch {tdef} | mine {mdef}\n")
            rep.write(f"TYPE {d['name']} {tn}: torch {tt} | mine {mt}\n")
    nret = len(s.returns)
    if d["returns"] != "list" and nret != d["returns"]:
        rep.write(f"RETURNS {d['name']}: torch {nret} mine {d['returns']}\n")
rep.close()
inp = open(out + "/inplace.txt", "w")
for base, ov in sorted(names):
    try:
        op = getattr(getattr(torch.ops.aten, base + "_"), ov)
        inp.write(f"aten.{base}_.{ov}: {op._schema}\n")
    except Exception:
        pass
    # other in-place overloads of this base
try:
    pass
finally:
    inp.close()
allinp = open(out + "/allinplace.txt", "w")
bases = sorted({b for b, _ in names})
for b in bases:
    try:
        op = getattr(torch.ops.aten, b + "_")
        for ov in op.overloads():
            allinp.write(f"aten.{b}_.{ov}: {getattr(op, ov)._schema}\n")
    except Exception:
        pass
allinp.close()
