"""The offline sealer's own texts, in English, marked for the public site's catalogues.

`portal sealer` puts these, with the questionnaire's labels from `formats.questionnaire`, into the
sealer file in all six languages, translated from the same catalogues as the site. The page's
script (js/sealer.js, js/cases.js) looks its messages up by these English texts; a test checks
that every text the script uses is listed here.
"""

from __future__ import annotations

from portal.formats.answers import PATTERN_PROBLEMS
from portal.formats.fields import N_

# What the page shows, written into it by portal/offline/sealer.py.
TITLE = N_("Seal a case on this computer")
INTRO = N_(
    "This file seals cases for the reprisals team on this computer, with no connection: nothing "
    "you type or attach leaves this computer. It saves a sealed case file that only the team can "
    "open. Upload that file on the portal's page for organisations, or give it to the team "
    "another way."
)
LANGUAGE = N_("Language")
KEY_HEADING = N_("The team's key")
FINGERPRINT = N_("Fingerprint")
COMPARE = N_(
    "Before you seal anything, compare this fingerprint with the one the UN human rights office "
    "publishes through other channels. If they differ, do not use this file, and tell the team "
    "through another channel."
)
NO_SCRIPT = N_(
    "This file needs JavaScript to seal cases, and JavaScript is turned off here (for example, "
    "Tor Browser at its Safest level). Open it at another security level or in another browser, "
    "or seal cases with the offline command portal seal."
)
PROBLEMS = N_("Please check these answers. Nothing was sealed.")
SEAL = N_("Seal the case")
ANOTHER = N_("Seal another case")
CSV_HEADING = N_("Seal many cases from a CSV file")
CSV_INTRO = N_(
    "A row per case and a column per question, named as for the offline tool (portal seal "
    "--csv): “;” between several choices, an attachments column naming files, and an optional "
    "locale column. Choose the files it names as well."
)
CSV_FILE = N_("CSV file of cases")
CSV_ATTACHMENTS = N_("The files the CSV names")
CSV_SEAL = N_("Seal the cases")
ATTACHMENTS = N_("Attachments")
ATTACHMENTS_HELP = N_(
    "Photos, documents, recordings: any evidence you wish to share. You can choose several files."
)
REQUIRED = N_("(required)")
OPTIONAL = N_("(optional)")
REQUIRED_IF = N_("(required if it applies)")
# The empty first entry of a list to choose from (the countries).
CHOOSE = N_("Choose")

# What the page's script says while it works.
SCRIPT = (
    N_("Cancelled. Nothing was saved."),
    N_("%(name)s is too large for a sealed case file (the limit is 8 GiB). Nothing was saved."),
    N_(
        "A file could not be read (%(name)s): it may have been moved or changed. Nothing was "
        "saved. Choose it again and seal the case again."
    ),
    N_("Sealing failed, and nothing was saved. What you typed is still in the form."),
    N_("Save %(name)s"),
    N_("Sealed case file"),
    N_("Saved: %(name)s"),
    N_("At most %(count)s files can be attached to one case. Nothing was saved."),
    N_("Sealing the case on this computer…"),
    N_("(attachments: %(count)s, %(size)s)"),
    N_("(row %(row)s, attachments: %(count)s)"),
    N_("Sealed. Save the file with the button below, then upload it on the portal."),
    N_("Sealed and saved. Upload the file on the portal."),
    N_("Choose the CSV file of cases first."),
    N_("Row %(row)s of the CSV file:"),
    N_("Nothing was saved."),
    N_("The CSV file cannot be read as UTF-8 text. Nothing was saved."),
    N_(
        "Row %(row)s of the CSV file names the attachment %(name)s, which is not among the files "
        "chosen. Nothing was saved."
    ),
    N_("Cases sealed: %(count)s. Save each file with its button, then upload them on the portal."),
    N_(
        "This browser cannot seal here (it offers no WebCrypto to this page). Nothing can be "
        "sealed: use a current Firefox, Tor Browser or Chromium, or the offline command portal "
        "seal."
    ),
    N_(
        "The key in this file does not match the fingerprint it shows: the file was changed. Do "
        "not use it. Get the sealer again from the portal, or ask the team."
    ),
    # Receipts made in the browser (js/receipts.js), when the file carries the site's salt.
    N_(
        "Making the case's receipt on this computer (this can take a minute in a browser at a "
        "high security level)…"
    ),
    N_("Receipt of this case:"),
    N_(
        "Keep it safe: it opens the case's follow-up page and the team's replies. It was made on "
        "this computer and never sent anywhere, so nobody can give it again."
    ),
    N_(
        "This sealer was made from a key file without the site's receipt salt and cost, so the "
        "site will make each case's receipt when its file is uploaded."
    ),
    N_(
        "receipts.txt holds the receipts of these cases. It is as sensitive as the cases: keep it "
        "as safe as they are and never upload it."
    ),
    # A CSV of cases that cannot be read (js/cases.js).
    N_("A quoted cell is not closed."),
    N_("The CSV is empty; its first row names the fields."),
    N_("The report has no question named “%(name)s”."),
    N_("A column name appears twice in the first row."),
    N_("This row has more cells than the first row has names."),
    N_("“%(name)s” is not a language code such as en or fr."),
    N_("The CSV holds no cases below its first row."),
    # The problems answers.check names, shown by the page's own check.
    N_("Please answer this question."),
    N_("Please fill in this field."),
    N_("Please choose one of the options."),
    N_("Please choose among the options."),
    N_("This is too long; please shorten it."),
    *PATTERN_PROBLEMS.values(),
)

PAGE = (
    TITLE,
    INTRO,
    LANGUAGE,
    KEY_HEADING,
    FINGERPRINT,
    COMPARE,
    NO_SCRIPT,
    PROBLEMS,
    SEAL,
    ANOTHER,
    CSV_HEADING,
    CSV_INTRO,
    CSV_FILE,
    CSV_ATTACHMENTS,
    CSV_SEAL,
    ATTACHMENTS,
    ATTACHMENTS_HELP,
    REQUIRED,
    OPTIONAL,
    REQUIRED_IF,
    CHOOSE,
)
