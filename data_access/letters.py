"""Letters to data subjects, in Norwegian (bokmål) and English (DESIGN.md "Settings").

Plain text: what the person is told, with dates as ISO dates so no reader mistakes
the day. The controller's name and contact come from config.toml `[letters]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from data_access.settings import Letters


@dataclass(frozen=True)
class Letter:
    subject: str
    body: str


def inactivity_notice(
    *,
    full_name: str,
    email: str,
    last_activity_on: date,
    deletable_on: date,
    inactivity_months: int,
    invoice_years: int,
    letters: Letters | None = None,
) -> Letter:
    """The notice before an inactive account is deleted (RULES.md R13; privacy policy
    "deleted (following notification) after being inactive for 12 months").

    Says what will be deleted and from which date, what is kept (invoices, bokføringsloven
    §13) and how to keep the account (sign in before the date).
    """
    letters = letters or Letters()
    subject = (
        f"Kontoen din slettes {deletable_on.isoformat()} / "
        f"Your account will be deleted on {deletable_on.isoformat()}"
    )
    norwegian = f"""Hei {full_name},

Plaato-kontoen din ({email}) har ikke vært i bruk siden {last_activity_on.isoformat()}.
Personvernerklæringen vår sier at vi sletter kontoer som har vært inaktive i
{inactivity_months} måneder, etter at vi har varslet om det.

Hvis du ikke logger inn, sletter vi fra og med {deletable_on.isoformat()}:
- kontoen med navn og e-postadresse
- brukerne som er knyttet til kontoen
- bruksstatistikk og samtykkehistorikk knyttet til kontoen
- kundeservicehenvendelser knyttet til kontoen

Fakturaer oppbevarer vi så lenge bokføringsloven § 13 krever ({invoice_years} år etter
utløpet av regnskapsåret); deretter anonymiseres de.

Vil du beholde kontoen? Logg inn før {deletable_on.isoformat()}, så blir den ikke slettet.

Spørsmål? Kontakt oss på {letters.controller_contact}.

Vennlig hilsen
{letters.controller_name}"""
    english = f"""Dear {full_name},

Your Plaato account ({email}) has not been used since {last_activity_on.isoformat()}.
Our privacy policy says that we delete accounts that have been inactive for
{inactivity_months} months, after notifying the account holder.

Unless you sign in, from {deletable_on.isoformat()} we will delete:
- the account with its name and e-mail address
- the users linked to the account
- usage statistics and consent history linked to the account
- customer-service contacts linked to the account

Invoices are kept for as long as the Norwegian Bookkeeping Act § 13 requires
({invoice_years} years after the end of the financial year); they are then anonymised.

Do you want to keep the account? Sign in before {deletable_on.isoformat()} and it will not be deleted.

Questions? Contact us at {letters.controller_contact}.

Kind regards,
{letters.controller_name}"""
    return Letter(subject=subject, body=f"{norwegian}\n\n-- English --\n\n{english}\n")
