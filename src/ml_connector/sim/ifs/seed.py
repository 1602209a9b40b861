"""Deterministic seed data: the same options give the same records, byte for byte.

Each entity kind draws from its own RNG (seeded from ``seed`` and the kind), so growing one kind's count does not
change the others. Some purchase order keys deliberately contain characters that need escaping in URLs and OData
literals (``'``, ``/``, ``&``, ``#``, ``%``, space, ``+``, ``?``, non-ASCII).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from ml_connector.sim.ifs.options import IfsSimOptions
from ml_connector.sim.ifs.schema import PO_STATES, PROJECT_STATES, WO_STATES
from ml_connector.sim.people import BUYERS, PEOPLE, WORK_LEADERS

Values = dict[str, Any]

# Purchase order number -> suffix making its key awkward to quote and URL-encode.
SPECIAL_ORDER_SUFFIXES: dict[int, str] = {
    3: "/B",
    5: "'Q",
    8: "&C",
    13: "#D",
    21: "%E",
    34: " F",
    55: "-Müller",
    89: "+G",
    144: "?H",
    233: "''2",
}

WORK_TYPES = ("CM", "PM", "SAFETY", "IMPROV")
GL_ACCOUNTS = ("4000", "4010", "4100", "5000", "5200", "6100")
COST_CENTERS = ("CC100", "CC200", "CC300", "CC410", "CC520")
CURRENCIES = ("EUR", "USD", "SEK", "GBP")
COUNTRIES = ("SE", "DE", "US", "GB", "NO", "FI", "PL", "FR")
ORG_CODES = ("MAINT-A", "MAINT-B", "ELEC", "MECH")
_SUPPLIER_WORDS = (
    "Nordic",
    "Alpha",
    "Precision",
    "Global",
    "Baltic",
    "Summit",
    "Atlas",
    "Delta",
    "Northern",
    "Vector",
    "Keystone",
    "Granite",
)
_SUPPLIER_TRADES = ("Bearings", "Steel", "Hydraulics", "Electric", "Fasteners", "Logistics", "Tooling", "Plastics")
_PARTS = (
    "Bearing 6204",
    'Hydraulic hose 1/2"',
    "Contactor 24V",
    "Steel plate 4 mm",
    "V-belt SPA 1250",
    "Gear motor 0.75 kW",
    "Proximity sensor M12",
    "Filter cartridge",
    "Safety relay",
    "Cable tray 300 mm",
)
_PO_TEXTS = (
    "Spare parts for line {n}",
    "Quarterly replenishment",
    "Tooling for press {n}",
    "Maintenance stock refill",
    "Project material batch {n}",
    "Urgent repair parts",
    "Packaging material",
    "Electrical components for cell {n}",
)
_WO_TEXTS = (
    "Replace worn conveyor belt",
    "Annual inspection of crane {n}",
    "Leaking valve on pump {n}",
    "Calibrate weighing scale",
    "Guard rail damaged near press {n}",
    "Improve lighting in bay {n}",
    "Lubrication round",
    "Motor overheating on fan {n}",
)
_EQUIPMENT = ("Conveyor", "Crane", "Pump", "Press", "Compressor", "Fan", "Boiler", "Robot cell")
_PROJECT_TEXTS = (
    "Line {n} retrofit",
    "Warehouse expansion",
    "Energy efficiency {n}",
    "New packaging cell",
    "Safety upgrade {n}",
    "ERP rollout",
    "Paint shop renewal",
    "Test bench {n}",
)
_FIRST = ("Alex", "Sam", "Robin", "Kim", "Noor", "Tove", "Jonas", "Lea", "Omar", "Ines")
_LAST = ("Berg", "Costa", "Lind", "Novak", "Sato", "Weber", "Holm", "Rossi", "Ali", "Moreau")


def _weighted(rng: random.Random, pairs: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


_PO_WEIGHTS = tuple(zip(PO_STATES, (15, 30, 20, 10, 10, 10, 5), strict=True))
_WO_WEIGHTS = tuple(zip(WO_STATES, (15, 15, 25, 20, 10, 5, 7, 3), strict=True))
_PROJECT_WEIGHTS = tuple(zip(PROJECT_STATES, (10, 20, 55, 10, 5), strict=True))


def order_no(n: int) -> str:
    return f"PO-{n:06d}{SPECIAL_ORDER_SUFFIXES.get(n, '')}"


class SeedGenerator:
    """Produces records kind by kind; counters continue, so records created later are deterministic too."""

    def __init__(self, options: IfsSimOptions) -> None:
        self.options = options
        seed = options.seed
        self._rng = {
            kind: random.Random(f"{seed}:{kind}")
            for kind in ("Supplier", "Person", "Project", "PurchaseOrder", "WorkOrder")
        }
        self.sites = [f"S{100 * (i + 1)}" for i in range(options.sites)]
        self.company_of = {site: ("C01" if i < 2 else f"C{(i % 3) + 1:02d}") for i, site in enumerate(self.sites)}
        self.counters = {"Supplier": 0, "Person": 0, "Project": 0, "PurchaseOrder": 0, "WorkOrder": 0}
        self.supplier_ids: list[str] = []
        self.person_ids: list[str] = []
        self.project_ids: list[str] = []

    # -- time ----------------------------------------------------------------------------------------------------
    def _past(self, rng: random.Random, max_days: float = 365) -> dt.datetime:
        seconds = rng.randint(3600, int(max_days * 86400))
        return (self.options.anchor - dt.timedelta(seconds=seconds)).replace(microsecond=0)

    def _changed_after(self, rng: random.Random, created: dt.datetime) -> dt.datetime:
        room = int(min(30 * 86400, (self.options.anchor - created).total_seconds()))
        return created + dt.timedelta(seconds=rng.randint(0, max(room, 0)))

    # -- kinds -----------------------------------------------------------------------------------------------------
    def supplier(self) -> Values:
        rng = self._rng["Supplier"]
        self.counters["Supplier"] += 1
        n = self.counters["Supplier"]
        supplier_id = f"SUP-{n:04d}" + ("'OB" if n == 7 else "")
        name = "O'Brien & Sons Ltd" if n == 7 else f"{rng.choice(_SUPPLIER_WORDS)} {rng.choice(_SUPPLIER_TRADES)} {n}"
        slug = "".join(c for c in name.lower() if c.isalnum())[:20]
        self.supplier_ids.append(supplier_id)
        return {
            "SupplierId": supplier_id,
            "Name": name,
            "Country": rng.choice(COUNTRIES),
            "Cf_Supplier_Tier": _weighted(rng, (("T1", 20), ("T2", 50), ("T3", 30))),
            "Cf_Contact_Email": f"orders@{slug}.example.com",
        }

    def people(self) -> list[Values]:
        """The shared people first, then generated ones up to ``persons``."""
        out = [{"PersonId": p.person_id, "Name": p.name, "Email": p.email, "UserId": p.person_id} for p in PEOPLE]
        self.person_ids.extend(p.person_id for p in PEOPLE)
        self.counters["Person"] = len(PEOPLE)
        while len(out) < self.options.persons:
            out.append(self.person())
        return out

    def person(self) -> Values:
        rng = self._rng["Person"]
        self.counters["Person"] += 1
        n = self.counters["Person"]
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        person_id = f"PERS{n:04d}"
        self.person_ids.append(person_id)
        return {
            "PersonId": person_id,
            "Name": f"{first} {last}",
            "Email": f"{first}.{last}{n}@example.com".lower(),
            "UserId": person_id,
        }

    def project(self) -> Values:
        rng = self._rng["Project"]
        self.counters["Project"] += 1
        n = self.counters["Project"]
        project_id = f"PRJ-{1000 + n}"
        self.project_ids.append(project_id)
        return {
            "ProjectId": project_id,
            "Name": rng.choice(_PROJECT_TEXTS).format(n=n),
            "Company": self.company_of[rng.choice(self.sites)],
            "Manager": rng.choice(PEOPLE).person_id,
            "Objstate": _weighted(rng, _PROJECT_WEIGHTS),
        }

    def purchase_order(
        self, *, now: dt.datetime | None = None, lines: int | None = None
    ) -> tuple[Values, list[Values]]:
        """A purchase order and its 1-3 part lines; ``now`` set means created at that moment (not seeded history)."""
        rng = self._rng["PurchaseOrder"]
        self.counters["PurchaseOrder"] += 1
        n = self.counters["PurchaseOrder"]
        key = order_no(n)
        entered = now.replace(microsecond=0) if now else self._past(rng)
        changed = entered if now else self._changed_after(rng, entered)
        site = rng.choice(self.sites)
        project = rng.choice(self.project_ids) if self.project_ids and rng.random() < 0.6 else None
        count = rng.randint(1, 3) if lines is None else lines
        order_lines: list[Values] = []
        for line_no in range(1, count + 1):
            qty = float(rng.choice((1, 2, 4, 5, 10, 12, 20, 50, 100)))
            price = round(rng.uniform(2, 2500), 2)
            order_lines.append(
                {
                    "OrderNo": key,
                    "LineNo": str(line_no),
                    "ReleaseNo": "1",
                    "PartNo": f"P-{rng.randint(10000, 99999)}",
                    "Description": rng.choice(_PARTS),
                    "BuyQtyDue": qty,
                    "BuyUnitPrice": price,
                    "NetAmtCurr": round(qty * price, 2),
                    "ProjectId": project,
                    "CodeA": rng.choice(GL_ACCOUNTS),
                    "CodeB": rng.choice(COST_CENTERS),
                    "CodeF": project,
                }
            )
        order = {
            "OrderNo": key,
            "VendorNo": rng.choice(self.supplier_ids) if self.supplier_ids else None,
            "OrderDate": entered.date(),
            "DateEntered": entered,
            "Objstate": "Planned" if now else _weighted(rng, _PO_WEIGHTS),
            "Contract": site,
            "Company": self.company_of[site],
            "BuyerCode": rng.choice(BUYERS),
            "AuthorizeCode": rng.choice(BUYERS),
            "CurrencyCode": rng.choice(CURRENCIES),
            "ProjectId": project,
            "Description": rng.choice(_PO_TEXTS).format(n=rng.randint(1, 9)),
            "TotalAmount": round(sum(line["NetAmtCurr"] for line in order_lines), 2),
            "Cf_Changed_At": changed,
            "Cf_Jira_Status": None,
            "Cf_Jira_Key": None,
        }
        return order, order_lines

    def work_order(self, *, now: dt.datetime | None = None) -> Values:
        rng = self._rng["WorkOrder"]
        self.counters["WorkOrder"] += 1
        n = self.counters["WorkOrder"]
        registered = now.replace(microsecond=0) if now else self._past(rng)
        changed = registered if now else self._changed_after(rng, registered)
        start = registered + dt.timedelta(hours=rng.randint(4, 14 * 24))
        site = rng.choice(self.sites)
        equipment = rng.choice(_EQUIPMENT)
        text = rng.choice(_WO_TEXTS).format(n=rng.randint(1, 9))
        return {
            "WoNo": 1000 + n,
            "ErrDescr": text[:60],
            "ErrDescrLo": f"{text}. Reported during the {rng.choice(('morning', 'evening', 'night'))} shift; "
            f"see equipment log for details.",
            "WorkTypeId": rng.choice(WORK_TYPES),
            "PriorityId": str(rng.randint(1, 4)),
            "OrgCode": rng.choice(ORG_CODES),
            "MchCode": f"EQ-{rng.randint(1, 400):04d}",
            "MchCodeDescription": f"{equipment} {rng.randint(1, 40)}",
            "Contract": site,
            "Company": self.company_of[site],
            "WorkLeaderSign": rng.choice(WORK_LEADERS),
            "ReportedBy": rng.choice(self.person_ids) if self.person_ids else None,
            "RegDate": registered,
            "PlanSDate": start,
            "PlanFDate": start + dt.timedelta(hours=rng.randint(1, 72)),
            "Objstate": "WorkRequest" if now else _weighted(rng, _WO_WEIGHTS),
            "Cf_Changed_At": changed,
            "Cf_Jira_Status": None,
            "Cf_Jira_Key": None,
        }
