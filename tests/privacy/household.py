"""A simulated household for the presence-inference check (issue 4).

One household = an occupancy schedule (workdays away with jitter, working from home now and then,
evening errands, weekend outings, a few days away entirely, nights at home) and two rooms, each with
one smart heater that also carries a CO2 sensor, a PIR and a power meter:

  plain    living room, a plain programmable heater: its setpoint follows a fixed weekly schedule,
           whoever is home.
  presence bedroom/study, a heater with a presence mode: comfort setpoint while someone is home and
           awake, eco when nobody is home, night setback; it also reports its "mode".

Every 30 s each heater reports temperature, setpoint, humidity, co2_ppm, motion (PIR triggers in the
last 30 s), power_w (heater + what is plugged into its circuit), error_code and firmware (and mode).

The physics is deliberately simple but of a realistic size: a first-order room (time constant 10 h,
a 1.5 kW heater gives +4 K/h, a person +0.25 K/h), CO2 from breathing (~0.125 ppm/s per awake person
in a 40 m3 room, 0.5 air changes per hour), moisture from people, cooking and showers (indoor moisture
excess of a few g/m3, as measured in occupied dwellings in winter), relative humidity from that and
the room temperature. Numbers are in the comments where they are set.
"""
import math

import numpy as np

STEP_S = 30
STEPS_PER_DAY = 86400 // STEP_S


def _h(x):
    """hours -> step index within a day"""
    return int(round(x * 3600 / STEP_S))


def occupancy(rng, days, weekday0):
    """Per-step arrays: home (anyone home), awake (someone home and awake), persons home,
    in_living (persons in the living room), in_bed (persons in the bedroom/study)."""
    n = days * STEPS_PER_DAY
    home = np.zeros(n, bool)
    awake = np.zeros(n, bool)
    persons = rng.integers(1, 4)                      # 1..3 people
    leave_mu = rng.uniform(7.0, 8.75)
    return_mu = rng.uniform(16.5, 18.5)
    wake_mu = rng.uniform(6.0, 7.5)
    sleep_mu = rng.uniform(22.0, 23.75)
    wfh_p = rng.uniform(0.0, 0.3)                     # share of workdays worked from home
    trip_p = rng.uniform(0.05, 0.15)                  # share of days away entirely
    away_trip = False
    for d in range(days):
        wd = (weekday0 + d) % 7
        base = d * STEPS_PER_DAY
        day_home = np.ones(STEPS_PER_DAY, bool)
        # a trip: away the whole day (and the following night, if it continues)
        if rng.random() < trip_p or (away_trip and rng.random() < 0.5):
            away_trip = True
            home[base:base + STEPS_PER_DAY] = False
            continue
        away_trip = False
        wake = wake_mu + rng.normal(0, 0.3) + (1.0 if wd >= 5 else 0.0)
        sleep = sleep_mu + rng.normal(0, 0.4) + (0.5 if wd >= 4 else 0.0)
        outings = []
        if wd < 5 and rng.random() >= wfh_p:
            leave = leave_mu + rng.normal(0, 0.33)
            back = return_mu + rng.normal(0, 0.66)
            outings.append((leave, back))
            if rng.random() < 0.3:                    # an evening errand
                s = back + rng.uniform(0.5, 2.0)
                outings.append((s, s + rng.uniform(0.5, 1.5)))
        else:                                         # weekend or working from home
            for _ in range(rng.integers(0, 3)):
                s = rng.uniform(9.0, 19.0)
                outings.append((s, s + rng.uniform(0.75, 3.5)))
        for s, e in outings:
            day_home[max(0, _h(s)):min(STEPS_PER_DAY, _h(e))] = False
        day_awake = np.zeros(STEPS_PER_DAY, bool)
        day_awake[_h(wake):min(STEPS_PER_DAY, _h(sleep))] = True
        home[base:base + STEPS_PER_DAY] = day_home
        awake[base:base + STEPS_PER_DAY] = day_awake & day_home
    nhome = np.where(home, persons, 0)
    asleep = home & ~awake
    # where the people are: awake -> mostly living room, some time in the study; asleep -> bedroom
    in_study = awake & (rng.random(n) < 0.2)
    in_living = np.where(awake & ~in_study, nhome, 0)
    in_bed = np.where(asleep, nhome, np.where(in_study, 1, 0))
    return dict(home=home, awake=awake, nhome=nhome, in_living=in_living, in_bed=in_bed)


def plain_setpoint(hour, wd):
    """A fixed weekly programme, independent of presence."""
    if wd < 5:
        return 21.0 if (6.5 <= hour < 8.0 or 17.0 <= hour < 22.5) else 17.0
    return 21.0 if 7.5 <= hour < 23.0 else 17.0


def simulate(seed, days, weekday0):
    """Returns (occ, streams): streams[kind] is a dict of per-step arrays for that heater."""
    rng = np.random.default_rng(seed)
    occ = occupancy(rng, days, weekday0)
    n = days * STEPS_PER_DAY
    t_h = np.arange(n) * STEP_S / 3600.0              # hours since start
    hour = t_h % 24
    wd = ((weekday0 + (np.arange(n) // STEPS_PER_DAY)) % 7)
    day_off = rng.normal(0, 2.5, days + 1)
    t_out = 4.0 + 4.0 * np.sin(2 * math.pi * (hour - 9) / 24) + day_off[np.arange(n) // STEPS_PER_DAY]
    comfort = rng.choice([20.0, 20.5, 21.0, 21.5])
    streams = {}
    for kind in ("plain", "presence"):
        people = occ["in_living"] if kind == "plain" else occ["in_bed"]
        awake_people = people * occ["awake"]
        if kind == "plain":
            sp = np.array([plain_setpoint(hour[i], wd[i]) for i in range(0, n, 1)])
            sp = np.where(sp > 18, comfort, sp)
            mode = None
        else:
            sp = np.where(occ["home"] & occ["awake"], comfort,
                          np.where(occ["home"], 18.0, 16.0))
            mode = np.where(occ["home"] & occ["awake"], "comfort", np.where(occ["home"], "night", "away"))
        T = np.empty(n)
        on = np.zeros(n, bool)
        co2 = np.empty(n)
        w = np.empty(n)                               # moisture excess, g/m3
        temp, c, wx, heating = comfort - 1.0, 450.0, 1.5, False
        tau_h, heat_kh, person_kh = 10.0, 4.0, 0.25
        ach = 0.5 + rng.uniform(-0.15, 0.25)          # air changes per hour
        dt_h = STEP_S / 3600.0
        cook = (occ["awake"] & (((hour >= 18.0) & (hour < 19.0)) | ((hour >= 12.0) & (hour < 12.75) & (wd >= 5)))) \
            if kind == "plain" else np.zeros(n, bool)
        shower = occ["awake"] & (hour >= 6.0) & (hour < 9.5) & (rng.random(n) < 0.02) if kind == "presence" \
            else np.zeros(n, bool)
        for i in range(n):
            # thermostat with 0.3 K hysteresis
            if temp < sp[i] - 0.3:
                heating = True
            elif temp > sp[i] + 0.3:
                heating = False
            on[i] = heating
            temp += dt_h * (-(temp - t_out[i]) / tau_h + (heat_kh if heating else 0.0) + person_kh * people[i])
            # CO2: 0.125 ppm/s per awake person (0.09 asleep) in 40 m3, ventilation to 420 ppm outdoors
            gen = 450.0 * awake_people[i] + 320.0 * (people[i] - awake_people[i])   # ppm/h
            c += dt_h * (gen - ach * (c - 420.0))
            # moisture: ~50 g/h per person /40 m3, cooking and showers add bursts
            mgen = 1.2 * people[i] + (6.0 if cook[i] else 0.0) + (40.0 if shower[i] else 0.0)
            wx += dt_h * (mgen - ach * wx)
            T[i], co2[i], w[i] = temp, c, wx
        sat = 5.018 + 0.32321 * T + 8.1847e-3 * T ** 2 + 3.1243e-4 * T ** 3     # g/m3 at saturation
        abs_out = 4.5 + 0.2 * (t_out - 4.0)
        rh = np.clip(100.0 * (abs_out + w) / sat, 5, 95)
        lam = np.where(people > 0, np.where(occ["awake"], 1.5 * np.minimum(people, 2), 0.05), 0.002)
        motion = rng.poisson(lam)
        appliance = np.where(awake_people > 0, rng.choice([0.0, 60.0, 150.0], n, p=[0.4, 0.35, 0.25]), 0.0)
        power = np.where(on, 1500.0, 0.0) + 4.0 + appliance + rng.normal(0, 2.0, n)
        streams[kind] = dict(
            temperature=np.round(T + rng.normal(0, 0.1, n), 1),
            setpoint=sp.astype(float),
            humidity=np.round(rh + rng.normal(0, 0.8, n), 1),
            co2_ppm=np.round(co2 + rng.normal(0, 15, n)),
            motion=motion,
            power_w=np.round(np.maximum(power, 0), 1),
            mode=mode,
        )
    return occ, streams


def payload(stream, i, kind):
    d = {"temperature": float(stream["temperature"][i]), "setpoint": float(stream["setpoint"][i]),
         "humidity": float(stream["humidity"][i]), "co2_ppm": int(stream["co2_ppm"][i]),
         "motion": int(stream["motion"][i]), "power_w": float(stream["power_w"][i]),
         "error_code": "0", "firmware": "1.4.2"}
    if kind == "presence":
        d["mode"] = str(stream["mode"][i])
    return d
