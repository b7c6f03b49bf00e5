#!/usr/bin/python3
"""The presence-inference check (issue 4, docs/minimization.md).

  publish  simulate households (household.py) and publish every 30-s sample of every heater through
           a running `hearth serve` (mTLS, QoS 1, one paho client per device, client id = device id).
           The server runs under libfaketime with a *stopped* clock read from --clock-file; this
           script moves that clock forward in steps of --tick seconds (the gcd of the policies'
           bucket sizes), publishes every sample of that tick and waits for every PUBACK before the
           next move. A PUBACK goes out only after the sample is committed, so each sample is
           bucketed by the server at the fake time of its tick: exactly where it would land if it
           had arrived in real time, since every stored bucket is a multiple of the tick and aligned
           to it. Ground truth (occupancy) and the raw stream are saved to --work.
  analyze  read what hearth stored (the SQLite `telemetry` table of --db), build per-15-min
           features from (a) the raw stream, (b) the stored buckets covering the slot, (c) the clock
           only, train classifiers for "someone is home", and report balanced accuracy.
"""
import argparse
import json
import math
import os
import sqlite3
import sys
import threading
import time
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import household as hh  # noqa: E402

SLOT_STEPS = 900 // hh.STEP_S          # 15-min slots
KINDS = ("plain", "presence")


def dev_id(h, kind):
    return "hh%02d-%s" % (h, kind)


# ---------------------------------------------------------------------------------------------
# publish

def write_clock(path, epoch):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + "\n")
    os.replace(tmp, path)


class Acks:
    def __init__(self):
        self.n = 0
        self.cv = threading.Condition()

    def on_publish(self, client, userdata, mid):
        with self.cv:
            self.n += 1
            self.cv.notify_all()

    def wait(self, target, timeout):
        deadline = time.monotonic() + timeout
        with self.cv:
            while self.n < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cv.wait(left)
        return True


def publish(a):
    import paho.mqtt.client as mqtt

    days, H, start = a.days, a.households, a.start
    weekday0 = time.gmtime(start).tm_wday
    t0 = time.monotonic()
    sims = [hh.simulate(a.seed * 1000 + h, days, weekday0) for h in range(H)]
    print("simulated %d households x %d days in %.1f s" % (H, days, time.monotonic() - t0), flush=True)

    acks = Acks()
    clients = {}
    connected = set()
    lock = threading.Lock()

    def on_connect(client, userdata, flags, rc):
        if rc == 0:
            with lock:
                connected.add(userdata)

    for h in range(H):
        for kind in KINDS:
            did = dev_id(h, kind)
            c = mqtt.Client(client_id=did, clean_session=True, userdata=did, protocol=mqtt.MQTTv311)
            c.tls_set(ca_certs=os.path.join(a.certs, "ca.pem"), certfile=os.path.join(a.certs, did + ".crt"),
                      keyfile=os.path.join(a.certs, did + ".key"))
            c.max_inflight_messages_set(2000)
            c.on_connect = on_connect
            c.on_publish = acks.on_publish
            c.connect("127.0.0.1", a.port, keepalive=60)
            c.loop_start()
            clients[(h, kind)] = c
    deadline = time.monotonic() + 30
    while len(connected) < len(clients) and time.monotonic() < deadline:
        time.sleep(0.05)
    if len(connected) < len(clients):
        print("FAIL: only %d of %d devices connected" % (len(connected), len(clients)), flush=True)
        for c in clients.values():
            c.loop_stop()
        return 1

    steps = days * hh.STEPS_PER_DAY
    per_tick = a.tick // hh.STEP_S
    sent = 0
    t1 = time.monotonic()
    ok = True
    for tick_start in range(0, steps, per_tick):           # bounded: days * 86400 / tick ticks
        write_clock(a.clock_file, start + tick_start * hh.STEP_S)
        for i in range(tick_start, min(steps, tick_start + per_tick)):
            for h in range(H):
                for kind in KINDS:
                    body = json.dumps(hh.payload(sims[h][1][kind], i, kind))
                    clients[(h, kind)].publish("hearth/v1/%s/telemetry" % dev_id(h, kind), body, qos=1)
                    sent += 1
        if not acks.wait(sent, 60):
            print("FAIL: %d published, only %d acknowledged after 60 s" % (sent, acks.n), flush=True)
            ok = False
            break
    dt = time.monotonic() - t1
    print("published %d samples (%d acknowledged) in %.1f s: %.0f msg/s" % (sent, acks.n, dt, sent / dt),
          flush=True)
    for c in clients.values():
        c.disconnect()
        c.loop_stop()

    os.makedirs(a.work, exist_ok=True)
    arrs = {"start": np.array(start), "days": np.array(days), "households": np.array(H),
            "weekday0": np.array(weekday0)}
    for h, (occ, streams) in enumerate(sims):
        arrs["home_%d" % h] = occ["home"]
        for kind in KINDS:
            for f, v in streams[kind].items():
                if v is None:
                    continue
                if f == "mode":
                    v = (v == "away").astype(float)   # the raw mode, as "away"
                arrs["raw_%d_%s_%s" % (h, kind, f)] = v
    np.savez_compressed(os.path.join(a.work, "truth.npz"), **arrs)
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------
# analyze

def slot_clock(start, nslots):
    ts = start + np.arange(nslots) * 900
    hour = (ts % 86400) / 3600.0
    wd = np.array([time.gmtime(int(t)).tm_wday for t in ts])
    return ts, np.column_stack([hour, wd, (wd >= 5).astype(float)])


def raw_features(z, h, nslots):
    cols, names = [], []
    for kind in KINDS:
        for f in ("temperature", "setpoint", "humidity", "co2_ppm", "motion", "power_w", "mode"):
            key = "raw_%d_%s_%s" % (h, kind, f)
            if key not in z:
                continue
            v = z[key].astype(float).reshape(nslots, SLOT_STEPS)
            if f == "motion":
                cols += [v.sum(1)]
                names += ["%s.%s.sum" % (kind, f)]
            else:
                cols += [v.mean(1), v[:, -1] - v[:, 0], v.max(1)]
                names += ["%s.%s.%s" % (kind, f, s) for s in ("mean", "delta", "max")]
    return np.column_stack(cols), names


def stored_features(db, h, ts):
    """For each slot: per stored (device, field), the value of the bucket covering the slot, its n,
    and its difference to the previous and next bucket of that field (what an analyst would use)."""
    cols, names = [], []
    for kind in KINDS:
        rows = db.execute("SELECT field, bucket_start, bucket_s, agg, n, value, text FROM telemetry "
                          "WHERE device_id = ? ORDER BY field, bucket_start", (dev_id(h, kind),)).fetchall()
        byfield = {}
        for field, b0, bs, agg, n, value, text in rows:
            if value is None:                         # strings: their value says nothing here; keep n
                v = float(zlib.crc32((text or "").encode()) % 1000)
            else:
                v = value / n if agg == "mean" and n else float(value)
            byfield.setdefault(field, {})[int(b0)] = (v, float(n), int(bs))
        for field in sorted(byfield):
            b = byfield[field]
            bs = next(iter(b.values()))[2]
            val, cnt, dprev, dnext = [], [], [], []
            for t in ts:
                k = int(t) - int(t) % bs
                cur = b.get(k, (math.nan, 0.0, bs))
                prv = b.get(k - bs, cur)
                nxt = b.get(k + bs, cur)
                val.append(cur[0])
                cnt.append(cur[1])
                dprev.append(cur[0] - prv[0])
                dnext.append(nxt[0] - cur[0])
            cols += [val, cnt, dprev, dnext]
            names += ["%s.%s.%s" % (kind, field, s) for s in ("value", "n", "dprev", "dnext")]
    X = np.nan_to_num(np.column_stack(cols).astype(float), nan=-999.0)
    return X, names


def models():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    return {
        "tree": lambda: DecisionTreeClassifier(max_depth=6, min_samples_leaf=8, class_weight="balanced",
                                               random_state=0),
        "logreg": lambda: make_pipeline(StandardScaler(), LogisticRegression(
            C=1.0, class_weight="balanced", max_iter=2000)),
    }


def clock_design(C, for_logreg):
    """Clock features: the tree takes hour, weekday, weekend; the linear model gets one-hot hour x
    (weekday/weekend) so it can represent any daily profile."""
    if not for_logreg:
        return C
    hr = np.floor(C[:, 0]).astype(int)
    oh = np.zeros((len(C), 48))
    oh[np.arange(len(C)), hr + 24 * C[:, 2].astype(int)] = 1.0
    return oh


def bacc(y, p):
    from sklearn.metrics import balanced_accuracy_score
    return balanced_accuracy_score(y, p)


def evaluate(data, fsets, model_name, split):
    """data: list of (C, {fset: X}, y, day) per household. Returns {fset: [bacc per household]}."""
    make = models()[model_name]
    lr = model_name == "logreg"
    out = {f: [] for f in fsets}
    H = len(data)
    for h in range(H):
        C, feats, y, day = data[h]
        for f in fsets:
            def design(hh_):
                Ch, Fh = data[hh_][0], data[hh_][1]
                parts = [clock_design(Ch, lr)] + ([Fh[f]] if f != "clock" else [])
                return np.column_stack(parts)
            if split == "days":                       # leave one day out, within the household
                X = design(h)
                pred = np.empty_like(y)
                for d in np.unique(day):
                    tr, te = day != d, day == d
                    if len(np.unique(y[tr])) < 2:
                        pred[te] = y[tr][0]
                        continue
                    m = make().fit(X[tr], y[tr])
                    pred[te] = m.predict(X[te])
                out[f].append(bacc(y, pred))
            else:                                     # leave one household out
                Xtr = np.vstack([design(g) for g in range(H) if g != h])
                ytr = np.concatenate([data[g][2] for g in range(H) if g != h])
                m = make().fit(Xtr, ytr)
                out[f].append(bacc(y, m.predict(design(h))))
    return out


def analyze(a):
    z = np.load(os.path.join(a.work, "truth.npz"))
    start, days, H = int(z["start"]), int(z["days"]), int(z["households"])
    nslots = days * 96
    ts, C = slot_clock(start, nslots)
    db = sqlite3.connect("file:%s?mode=ro" % a.db, uri=True)
    data, stored_names = [], None
    expect_n = days * hh.STEPS_PER_DAY
    problems = []
    for h in range(H):
        y = (z["home_%d" % h].reshape(nslots, SLOT_STEPS).mean(1) >= 0.5).astype(int)
        R, _ = raw_features(z, h, nslots)
        S, sn = stored_features(db, h, ts)
        stored_names = sn
        for kind in KINDS:
            # every sample carries every kept field, so each field's counts add up to the samples
            for field, n in db.execute("SELECT field, SUM(n) FROM telemetry WHERE device_id = ? GROUP BY field",
                                       (dev_id(h, kind),)).fetchall():
                if n != expect_n:
                    problems.append("%s: %s counts %d samples, %d published" % (dev_id(h, kind), field, n, expect_n))
        feats = {"raw": R, "stored": S}
        for kind in KINDS:                            # each heater's stored data alone
            idx = [i for i, nm in enumerate(sn) if nm.startswith(kind + ".")]
            feats["stored_" + kind] = S[:, idx]
        fields = sorted({nm.rsplit(".", 1)[0] for nm in sn})
        for fld in fields:                            # each stored field alone (to name a leak)
            idx = [i for i, nm in enumerate(sn) if nm.rsplit(".", 1)[0] == fld]
            feats["field:" + fld] = S[:, idx]
        data.append((C, feats, y, np.arange(nslots) // 96))
    fields = sorted({nm.rsplit(".", 1)[0] for nm in stored_names})
    fields_stored = db.execute("SELECT DISTINCT field FROM telemetry ORDER BY field").fetchall()

    res = {"households": H, "days": days, "slots_per_household": nslots,
           "occupied_share": float(np.mean([d[2].mean() for d in data])),
           "stored_fields": [f[0] for f in fields_stored], "problems": problems, "results": {}}
    main_sets = ["clock", "raw", "stored", "stored_plain", "stored_presence"]
    for model in ("tree", "logreg"):
        for split in ("days", "households"):
            sets = main_sets + ["field:" + f for f in fields]
            r = evaluate(data, sets, model, split)
            res["results"]["%s/%s" % (model, split)] = {k: [round(x, 4) for x in v] for k, v in r.items()}

    # report
    print("\n%d households x %d days, %d 15-min slots each; occupied share %.2f" %
          (H, days, nslots, res["occupied_share"]))
    print("stored fields: %s" % ", ".join(res["stored_fields"]))
    for p in problems:
        print("PROBLEM: " + p)
    for key, r in res["results"].items():
        clock = np.array(r["clock"])
        print("\n[%s]  balanced accuracy per household, and gain over clock-only" % key)
        print("  hh   clock    raw   stored  raw-clk  sto-clk  plain-clk  pres-clk")
        for h in range(H):
            print("  %2d  %.3f  %.3f  %.3f  %+.3f  %+.3f  %+.3f  %+.3f" % (
                h, r["clock"][h], r["raw"][h], r["stored"][h], r["raw"][h] - clock[h],
                r["stored"][h] - clock[h], r["stored_plain"][h] - clock[h], r["stored_presence"][h] - clock[h]))
        m = {k: float(np.mean(v)) for k, v in r.items()}
        print("  avg %.3f  %.3f  %.3f  %+.3f  %+.3f  %+.3f  %+.3f" % (
            m["clock"], m["raw"], m["stored"], m["raw"] - m["clock"], m["stored"] - m["clock"],
            m["stored_plain"] - m["clock"], m["stored_presence"] - m["clock"]))
        print("  per stored field (clock + that field alone), avg gain over clock:")
        for f in fields:
            print("    %-26s %+.3f" % (f, m["field:" + f] - m["clock"]))
    summ = {}
    for key, r in res["results"].items():
        m = {k: float(np.mean(v)) for k, v in r.items()}
        summ[key] = {"clock": m["clock"], "raw": m["raw"], "stored": m["stored"],
                     "raw_gain": m["raw"] - m["clock"], "stored_gain": m["stored"] - m["clock"],
                     "field_gain": {f: m["field:" + f] - m["clock"] for f in fields}}
    res["summary"] = summ
    worst_stored = max(s["stored_gain"] for s in summ.values())
    primary = summ["tree/days"]
    res["worst_stored_gain"] = worst_stored
    res["primary_raw_gain"] = primary["raw_gain"]
    print("\nprimary (tree, leave-one-day-out): raw-clock %+.3f, stored-clock %+.3f; "
          "worst stored-clock over all classifier/split pairs %+.3f" %
          (primary["raw_gain"], primary["stored_gain"], worst_stored))
    with open(os.path.join(a.work, "result.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("publish")
    pp.add_argument("--port", type=int, required=True)
    pp.add_argument("--certs", required=True)
    pp.add_argument("--clock-file", required=True)
    pp.add_argument("--start", type=int, required=True, help="fake epoch of the first sample")
    pp.add_argument("--tick", type=int, default=3600)
    pp.add_argument("--households", type=int, default=10)
    pp.add_argument("--days", type=int, default=7)
    pp.add_argument("--seed", type=int, default=1)
    pp.add_argument("--work", required=True)
    pa = sub.add_parser("analyze")
    pa.add_argument("--db", required=True)
    pa.add_argument("--work", required=True)
    a = p.parse_args()
    if a.cmd == "publish":
        if a.tick % hh.STEP_S or a.tick <= 0:
            sys.exit("--tick must be a positive multiple of %d" % hh.STEP_S)
        sys.exit(publish(a))
    sys.exit(analyze(a))


if __name__ == "__main__":
    main()
