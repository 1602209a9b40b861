"""People known to both simulated systems, so IFS person ids map to Jira users by email.

This is shared seed data of the simulated *world*, not connector code: both simulators read it, the connector never
does. ``jira_email_hidden`` marks Atlassian accounts whose profile hides the email (found only by exact match);
``in_jira`` False means the person has no Jira account at all (an unresolvable assignee).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    person_id: str  # IFS person id / user sign, upper case as IFS stores it
    name: str
    email: str
    in_jira: bool = True
    jira_email_hidden: bool = False


PEOPLE: tuple[Person, ...] = (
    Person("AALVAREZ", "Ana Alvarez", "ana.alvarez@example.com"),
    Person("BCHEN", "Bo Chen", "bo.chen@example.com"),
    Person("CDUBOIS", "Claire Dubois", "claire.dubois@example.com", jira_email_hidden=True),
    Person("DEKWUEME", "David Ekwueme", "david.ekwueme@example.com"),
    Person("EFISCHER", "Eva Fischer", "eva.fischer@example.com"),
    Person("FGARCIA", "Felipe Garcia", "felipe.garcia@example.com", jira_email_hidden=True),
    Person("GHANSEN", "Greta Hansen", "greta.hansen@example.com"),
    Person("HIVANOV", "Hugo Ivanov", "hugo.ivanov@example.com"),
    Person("IJONES", "Isla Jones", "isla.jones@example.com"),
    Person("JKOWALSKI", "Jan Kowalski", "jan.kowalski@example.com"),
    Person("KLARSSON", "Karin Larsson", "karin.larsson@example.com"),
    Person("LMORENO", "Luis Moreno", "luis.moreno@example.com", in_jira=False),
    Person("MNAKAMURA", "Mei Nakamura", "mei.nakamura@example.com"),
    Person("NOKAFOR", "Nia Okafor", "nia.okafor@example.com"),
    Person("OPETROV", "Oleg Petrov", "oleg.petrov@example.com", in_jira=False),
)

# Buyers on purchase orders and responsible persons (work leaders) on work orders are drawn from these.
BUYERS: tuple[str, ...] = ("AALVAREZ", "BCHEN", "CDUBOIS", "DEKWUEME", "EFISCHER", "LMORENO")
WORK_LEADERS: tuple[str, ...] = ("FGARCIA", "GHANSEN", "HIVANOV", "IJONES", "JKOWALSKI", "OPETROV")
