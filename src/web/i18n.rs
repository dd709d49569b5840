//! The workspace's words in the desk's four languages, and which one an
//! agent reads: their choice (cookie, then profile), else the browser's
//! `Accept-Language`, else Dutch. Pure.
//!
//! Each entry holds all four translations by type (nl, fr, en, de), so a
//! missing one does not compile; templates use them as `t.key`, and a key
//! a template names that is missing here fails the render test.

use crate::domain::Language;

/// (key, [nl, fr, en, de]).
pub const MESSAGES: &[(&str, [&str; 4])] = &[
    (
        "agents",
        ["Medewerkers", "Agents", "Agents", "Mitarbeitende"],
    ),
    (
        "disabled",
        ["Uitgeschakeld", "Désactivé", "Disabled", "Deaktiviert"],
    ),
    (
        "disable",
        ["Uitschakelen", "Désactiver", "Disable", "Deaktivieren"],
    ),
    (
        "agents_help",
        [
            "Medewerkers toevoegen en wachtwoorden instellen: servicedesk agents add.",
            "Ajouter des agents et définir les mots de passe : servicedesk agents add.",
            "Adding agents and setting passwords: servicedesk agents add.",
            "Mitarbeitende hinzufügen und Passwörter setzen: servicedesk agents add.",
        ],
    ),
    (
        "saved_replies",
        [
            "Standaardantwoorden",
            "Réponses types",
            "Saved replies",
            "Textbausteine",
        ],
    ),
    ("insert", ["Invoegen", "Insérer", "Insert", "Einfügen"]),
    ("name", ["Naam", "Nom", "Name", "Name"]),
    ("text", ["Tekst", "Texte", "Text", "Text"]),
    ("delete", ["Verwijderen", "Supprimer", "Delete", "Löschen"]),
    (
        "new_saved_reply",
        [
            "Standaardantwoord toevoegen of vervangen",
            "Ajouter ou remplacer une réponse type",
            "Add or replace a saved reply",
            "Textbaustein hinzufügen oder ersetzen",
        ],
    ),
    (
        "saved_reply_help",
        [
            "Velden: {{ number }}, {{ subject }}, {{ customer }}, {{ name }}, {{ agent }}",
            "Champs : {{ number }}, {{ subject }}, {{ customer }}, {{ name }}, {{ agent }}",
            "Fields: {{ number }}, {{ subject }}, {{ customer }}, {{ name }}, {{ agent }}",
            "Felder: {{ number }}, {{ subject }}, {{ customer }}, {{ name }}, {{ agent }}",
        ],
    ),
    (
        "app_title",
        ["Servicedesk", "Servicedesk", "Service desk", "Servicedesk"],
    ),
    (
        "login_title",
        ["Aanmelden", "Connexion", "Log in", "Anmelden"],
    ),
    (
        "email",
        [
            "E-mailadres",
            "Adresse e-mail",
            "E-mail address",
            "E-Mail-Adresse",
        ],
    ),
    (
        "password",
        ["Wachtwoord", "Mot de passe", "Password", "Passwort"],
    ),
    (
        "login_button",
        ["Aanmelden", "Se connecter", "Log in", "Anmelden"],
    ),
    (
        "login_failed",
        [
            "E-mailadres of wachtwoord klopt niet.",
            "Adresse e-mail ou mot de passe incorrect.",
            "Wrong e-mail address or password.",
            "E-Mail-Adresse oder Passwort ist falsch.",
        ],
    ),
    (
        "login_throttled",
        [
            "Te veel mislukte pogingen. Probeer het over een kwartier opnieuw.",
            "Trop de tentatives échouées. Réessayez dans un quart d'heure.",
            "Too many failed attempts. Try again in a quarter of an hour.",
            "Zu viele Fehlversuche. Versuchen Sie es in einer Viertelstunde erneut.",
        ],
    ),
    ("logout", ["Afmelden", "Déconnexion", "Log out", "Abmelden"]),
    (
        "queues",
        ["Wachtrijen", "Files d'attente", "Queues", "Warteschlangen"],
    ),
    ("views", ["Overzichten", "Vues", "Views", "Ansichten"]),
    (
        "view_open",
        ["Alle open", "Tous les ouverts", "All open", "Alle offenen"],
    ),
    (
        "view_mine",
        ["Mijn tickets", "Mes tickets", "Mine", "Meine Tickets"],
    ),
    (
        "view_unassigned",
        [
            "Niet toegewezen",
            "Non attribués",
            "Unassigned",
            "Nicht zugewiesen",
        ],
    ),
    (
        "view_awaiting_approval",
        [
            "Wacht op akkoord over kosten",
            "En attente d'accord sur les frais",
            "Awaiting charge approval",
            "Wartet auf Kostenfreigabe",
        ],
    ),
    (
        "view_on_hold",
        [
            "On hold (contract geschorst)",
            "En attente (contrat suspendu)",
            "On hold (contract suspended)",
            "Zurückgestellt (Vertrag ausgesetzt)",
        ],
    ),
    (
        "view_waiting",
        [
            "Wacht op de klant",
            "En attente du client",
            "Waiting for the customer",
            "Wartet auf den Kunden",
        ],
    ),
    (
        "view_to_check",
        [
            "Sortering nakijken",
            "Tri à vérifier",
            "Sorting to check",
            "Sortierung prüfen",
        ],
    ),
    ("view_everything", ["Alles", "Tout", "Everything", "Alles"]),
    (
        "category_question",
        ["Vraag", "Question", "Question", "Frage"],
    ),
    (
        "category_incident",
        ["Incident", "Incident", "Incident", "Störung"],
    ),
    (
        "category_change",
        ["Wijziging", "Changement", "Change", "Änderung"],
    ),
    (
        "category_feedback",
        ["Feedback", "Retour", "Feedback", "Feedback"],
    ),
    (
        "priority",
        ["Prioriteit", "Priorité", "Priority", "Priorität"],
    ),
    (
        "priority_normal",
        ["Normaal", "Normale", "Normal", "Normal"],
    ),
    ("priority_high", ["Hoog", "Haute", "High", "Hoch"]),
    (
        "priority_critical",
        ["Kritiek", "Critique", "Critical", "Kritisch"],
    ),
    (
        "priority_words",
        [
            "Woorden die de prioriteit bepaalden",
            "Mots qui ont décidé la priorité",
            "Words that decided the priority",
            "Wörter, die die Priorität bestimmten",
        ],
    ),
    (
        "set_priority",
        [
            "Prioriteit wijzigen",
            "Changer la priorité",
            "Change priority",
            "Priorität ändern",
        ],
    ),
    ("status_new", ["Nieuw", "Nouveau", "New", "Neu"]),
    (
        "status_awaiting_approval",
        [
            "Wacht op akkoord",
            "En attente d'accord",
            "Awaiting approval",
            "Wartet auf Freigabe",
        ],
    ),
    (
        "status_on_hold",
        ["On hold", "En attente", "On hold", "Zurückgestellt"],
    ),
    ("status_open", ["Open", "Ouvert", "Open", "Offen"]),
    (
        "status_waiting",
        [
            "Wacht op de klant",
            "En attente du client",
            "Waiting for the customer",
            "Wartet auf den Kunden",
        ],
    ),
    (
        "status_resolved",
        ["Opgelost", "Résolu", "Resolved", "Gelöst"],
    ),
    (
        "status_closed",
        ["Gesloten", "Fermé", "Closed", "Geschlossen"],
    ),
    (
        "reason_infrastructure",
        [
            "Infrastructuur",
            "Infrastructure",
            "Infrastructure",
            "Infrastruktur",
        ],
    ),
    (
        "reason_training",
        ["Opleiding", "Formation", "Training", "Schulung"],
    ),
    (
        "reason_own_modification",
        [
            "Eigen aanpassing",
            "Modification propre",
            "Own modification",
            "Eigene Anpassung",
        ],
    ),
    (
        "reason_on_site",
        [
            "Interventie ter plaatse",
            "Intervention sur site",
            "On-site visit",
            "Einsatz vor Ort",
        ],
    ),
    (
        "reason_change_request",
        [
            "Wijzigingsaanvraag",
            "Demande de changement",
            "Change request",
            "Änderungsantrag",
        ],
    ),
    (
        "not_chargeable",
        [
            "Niet aanrekenbaar",
            "Non facturable",
            "Not chargeable",
            "Nicht kostenpflichtig",
        ],
    ),
    (
        "chargeable",
        [
            "Aanrekenbaar",
            "Facturable",
            "Chargeable",
            "Kostenpflichtig",
        ],
    ),
    ("filters", ["Filters", "Filtres", "Filters", "Filter"]),
    (
        "filter_button",
        ["Toepassen", "Appliquer", "Apply", "Anwenden"],
    ),
    ("customer", ["Klant", "Client", "Customer", "Kunde"]),
    ("language", ["Taal", "Langue", "Language", "Sprache"]),
    ("status", ["Status", "Statut", "Status", "Status"]),
    (
        "category",
        ["Categorie", "Catégorie", "Category", "Kategorie"],
    ),
    ("search", ["Zoeken", "Rechercher", "Search", "Suchen"]),
    ("any", ["Alle", "Tous", "Any", "Alle"]),
    ("yes", ["Ja", "Oui", "Yes", "Ja"]),
    ("no", ["Nee", "Non", "No", "Nein"]),
    ("col_number", ["Nummer", "Numéro", "Number", "Nummer"]),
    ("col_subject", ["Onderwerp", "Objet", "Subject", "Betreff"]),
    (
        "col_sender",
        ["Afzender", "Expéditeur", "Sender", "Absender"],
    ),
    ("col_created", ["Aangemaakt", "Créé", "Created", "Erstellt"]),
    (
        "assignee",
        [
            "Toegewezen aan",
            "Attribué à",
            "Assigned to",
            "Zugewiesen an",
        ],
    ),
    ("nobody", ["Niemand", "Personne", "Nobody", "Niemand"]),
    (
        "next_page",
        [
            "Volgende pagina",
            "Page suivante",
            "Next page",
            "Nächste Seite",
        ],
    ),
    (
        "first_page",
        [
            "Eerste pagina",
            "Première page",
            "First page",
            "Erste Seite",
        ],
    ),
    (
        "no_tickets",
        [
            "Geen tickets in dit overzicht.",
            "Aucun ticket dans cette vue.",
            "No tickets in this view.",
            "Keine Tickets in dieser Ansicht.",
        ],
    ),
    (
        "thread",
        ["Gesprek", "Fil de discussion", "Thread", "Verlauf"],
    ),
    (
        "kind_inbound",
        [
            "Mail van de klant",
            "Courriel du client",
            "Customer's mail",
            "Mail des Kunden",
        ],
    ),
    (
        "kind_reply",
        ["Antwoord van", "Réponse de", "Reply by", "Antwort von"],
    ),
    (
        "kind_auto_reply",
        [
            "Automatisch antwoord",
            "Réponse automatique",
            "Automatic reply",
            "Automatische Antwort",
        ],
    ),
    (
        "kind_note",
        [
            "Interne notitie van",
            "Note interne de",
            "Internal note by",
            "Interne Notiz von",
        ],
    ),
    (
        "outsider",
        [
            "Buitenstaander: geen geregistreerde persoon van deze klant; besliste niets",
            "Personne extérieure : pas une personne enregistrée de ce client ; n'a rien décidé",
            "Outsider: not a registered person of this customer; decided nothing",
            "Außenstehender: keine registrierte Person dieses Kunden; hat nichts entschieden",
        ],
    ),
    (
        "attention",
        ["Aandacht", "Attention", "Attention", "Achtung"],
    ),
    (
        "evidence",
        [
            "Waarom zo gesorteerd",
            "Pourquoi ce tri",
            "Why it was sorted so",
            "Warum so sortiert",
        ],
    ),
    (
        "confidence",
        ["Zekerheid", "Confiance", "Confidence", "Sicherheit"],
    ),
    ("rules_fired", ["Regels", "Règles", "Rules", "Regeln"]),
    ("registry", ["Register", "Registre", "Registry", "Register"]),
    ("customers", ["Klanten", "Clients", "Customers", "Kunden"]),
    ("persons", ["Personen", "Personnes", "Persons", "Personen"]),
    (
        "registry_help",
        [
            "Klanten en personen importeren: servicedesk customers import en persons import.",
            "Importer clients et personnes : servicedesk customers import et persons import.",
            "Importing customers and persons: servicedesk customers import and persons import.",
            "Kunden und Personen importieren: servicedesk customers import und persons import.",
        ],
    ),
    (
        "load_remote_images",
        [
            "Afbeeldingen van elders laden",
            "Charger les images distantes",
            "Load remote images",
            "Externe Bilder laden",
        ],
    ),
    (
        "reason_sentence",
        [
            "De zin die de kosten aangaf",
            "La phrase qui a signalé les frais",
            "The sentence that flagged the charge",
            "Der Satz, der die Kosten anzeigte",
        ],
    ),
    ("words", ["Woorden", "Mots", "Words", "Wörter"]),
    (
        "reason_confidence",
        [
            "Zekerheid over kosten",
            "Confiance sur les frais",
            "Confidence about the charge",
            "Sicherheit zu Kosten",
        ],
    ),
    ("customer_panel", ["Klant", "Client", "Customer", "Kunde"]),
    ("contract", ["Contract", "Contrat", "Contract", "Vertrag"]),
    ("contract_active", ["Actief", "Actif", "Active", "Aktiv"]),
    (
        "contract_suspended",
        ["Geschorst", "Suspendu", "Suspended", "Ausgesetzt"],
    ),
    ("campus", ["Campus", "Site", "Campus", "Standort"]),
    ("person_role", ["Rol", "Rôle", "Role", "Rolle"]),
    (
        "role_campus",
        [
            "Referentiepersoon campus",
            "Personne de référence du site",
            "Campus reference person",
            "Ansprechpartner Standort",
        ],
    ),
    (
        "role_general",
        [
            "Algemene referentiepersoon",
            "Personne de référence générale",
            "General reference person",
            "Allgemeiner Ansprechpartner",
        ],
    ),
    (
        "role_technical",
        [
            "Technisch contact",
            "Contact technique",
            "Technical contact",
            "Technischer Kontakt",
        ],
    ),
    (
        "not_registered",
        [
            "Niet (meer) geregistreerd",
            "Plus enregistré",
            "Not (or no longer) registered",
            "Nicht (mehr) registriert",
        ],
    ),
    (
        "registry_gaps",
        [
            "Gaten in de registratie",
            "Lacunes dans le registre",
            "Registry gaps",
            "Lücken im Register",
        ],
    ),
    (
        "other_open",
        [
            "Andere open tickets",
            "Autres tickets ouverts",
            "Other open tickets",
            "Andere offene Tickets",
        ],
    ),
    ("none", ["Geen", "Aucun", "None", "Keine"]),
    ("charge", ["Kosten", "Frais", "Charge", "Kosten"]),
    (
        "charge_detected",
        [
            "Aanrekenbaar werk gezien",
            "Travail facturable détecté",
            "Chargeable work detected",
            "Kostenpflichtige Arbeit erkannt",
        ],
    ),
    (
        "charge_notice_sent",
        [
            "Melding verstuurd",
            "Avis envoyé",
            "Notice sent",
            "Hinweis gesendet",
        ],
    ),
    (
        "charge_approved",
        ["Akkoord", "Accepté", "Approved", "Freigegeben"],
    ),
    (
        "charge_refused",
        ["Geweigerd", "Refusé", "Refused", "Abgelehnt"],
    ),
    (
        "charge_waiting",
        [
            "Nog geen antwoord",
            "Pas encore de réponse",
            "No answer yet",
            "Noch keine Antwort",
        ],
    ),
    (
        "charge_by_phone",
        [
            "Beslissing van de klant vastleggen",
            "Enregistrer la décision du client",
            "Record the customer's decision",
            "Entscheidung des Kunden erfassen",
        ],
    ),
    (
        "decided_by",
        [
            "Beslist door",
            "Décidé par",
            "Decided by",
            "Entschieden von",
        ],
    ),
    (
        "compose_reply",
        [
            "Antwoord aan de klant",
            "Réponse au client",
            "Reply to the customer",
            "Antwort an den Kunden",
        ],
    ),
    (
        "compose_note",
        [
            "Interne notitie (wordt niet gemaild)",
            "Note interne (jamais envoyée)",
            "Internal note (never mailed)",
            "Interne Notiz (wird nie gemailt)",
        ],
    ),
    (
        "send_reply",
        [
            "Antwoord versturen",
            "Envoyer la réponse",
            "Send reply",
            "Antwort senden",
        ],
    ),
    (
        "add_note",
        [
            "Notitie toevoegen",
            "Ajouter la note",
            "Add note",
            "Notiz hinzufügen",
        ],
    ),
    (
        "reply_language",
        [
            "Taal van het ticket",
            "Langue du ticket",
            "Ticket language",
            "Sprache des Tickets",
        ],
    ),
    (
        "resort",
        ["Hersorteren", "Retrier", "Re-sort", "Neu sortieren"],
    ),
    ("save", ["Opslaan", "Enregistrer", "Save", "Speichern"]),
    ("take", ["Zelf nemen", "Prendre", "Take it", "Übernehmen"]),
    (
        "give_back",
        ["Teruggeven", "Rendre", "Give back", "Zurückgeben"],
    ),
    ("assign", ["Toewijzen", "Attribuer", "Assign", "Zuweisen"]),
    (
        "history",
        [
            "Geschiedenis",
            "Historique",
            "History",
            "Verlauf der Änderungen",
        ],
    ),
    (
        "back_to_queues",
        [
            "Terug naar de wachtrijen",
            "Retour aux files",
            "Back to the queues",
            "Zurück zu den Warteschlangen",
        ],
    ),
    (
        "done_reply",
        [
            "Antwoord in de wachtrij gezet; het wordt zo verstuurd.",
            "Réponse mise en file ; elle part dans un instant.",
            "Reply queued; it goes out in a moment.",
            "Antwort eingereiht; sie wird gleich gesendet.",
        ],
    ),
    (
        "done_saved",
        ["Opgeslagen.", "Enregistré.", "Saved.", "Gespeichert."],
    ),
    (
        "error_title",
        [
            "Dat lukte niet",
            "Cela n'a pas marché",
            "That did not work",
            "Das hat nicht geklappt",
        ],
    ),
    (
        "signed_in_as",
        [
            "Aangemeld als",
            "Connecté en tant que",
            "Signed in as",
            "Angemeldet als",
        ],
    ),
    // Daily work: drafts, undo send, shortcuts, bulk actions, merges.
    (
        "bulk_done",
        [
            "Tickets gewijzigd",
            "Tickets modifiés",
            "Tickets changed",
            "Tickets geändert",
        ],
    ),
    (
        "bulk_pick",
        [
            "Kiezen",
            "Choisir",
            "Select",
            "Auswählen",
        ],
    ),
    (
        "bulk_label",
        [
            "Voor de gekozen tickets",
            "Pour les tickets choisis",
            "For the selected tickets",
            "Für die ausgewählten Tickets",
        ],
    ),
    (
        "bulk_pick_all",
        [
            "Alle tickets op deze pagina kiezen",
            "Choisir tous les tickets de cette page",
            "Select every ticket on this page",
            "Alle Tickets dieser Seite auswählen",
        ],
    ),
    (
        "bulk_me",
        [
            "Mij",
            "Moi",
            "Me",
            "Mir",
        ],
    ),
    (
        "bulk_apply",
        [
            "Toepassen",
            "Appliquer",
            "Apply",
            "Anwenden",
        ],
    ),
    (
        "bulk_title",
        [
            "Wijziging van meerdere tickets",
            "Modification de plusieurs tickets",
            "Change to several tickets",
            "Änderung mehrerer Tickets",
        ],
    ),
    (
        "bulk_refused",
        [
            "Niet gewijzigd",
            "Non modifiés",
            "Not changed",
            "Nicht geändert",
        ],
    ),
    (
        "shortcuts",
        [
            "Sneltoetsen",
            "Raccourcis clavier",
            "Keyboard shortcuts",
            "Tastenkürzel",
        ],
    ),
    (
        "key_move",
        [
            "Volgende / vorige ticket of bericht",
            "Ticket ou message suivant / précédent",
            "Next / previous ticket or message",
            "Nächstes / vorheriges Ticket oder Nachricht",
        ],
    ),
    (
        "key_open",
        [
            "Gekozen ticket openen",
            "Ouvrir le ticket choisi",
            "Open the selected ticket",
            "Ausgewähltes Ticket öffnen",
        ],
    ),
    (
        "key_pick",
        [
            "Ticket aanvinken voor een wijziging van meerdere",
            "Cocher le ticket pour une modification groupée",
            "Tick the ticket for a bulk change",
            "Ticket für eine Sammeländerung markieren",
        ],
    ),
    (
        "key_reply",
        [
            "Antwoord schrijven",
            "Écrire une réponse",
            "Write a reply",
            "Antwort schreiben",
        ],
    ),
    (
        "key_note",
        [
            "Interne notitie schrijven",
            "Écrire une note interne",
            "Write an internal note",
            "Interne Notiz schreiben",
        ],
    ),
    (
        "key_resolve",
        [
            "Ticket opgelost zetten",
            "Marquer le ticket résolu",
            "Resolve the ticket",
            "Ticket als gelöst markieren",
        ],
    ),
    (
        "key_escape",
        [
            "Tekstvak of dit venster verlaten",
            "Quitter le champ ou cette fenêtre",
            "Leave the text box or this window",
            "Textfeld oder dieses Fenster verlassen",
        ],
    ),
    (
        "key_help",
        [
            "Deze lijst tonen",
            "Afficher cette liste",
            "Show this list",
            "Diese Liste zeigen",
        ],
    ),
    (
        "close",
        [
            "Sluiten",
            "Fermer",
            "Close",
            "Schließen",
        ],
    ),
    (
        "done_undone",
        [
            "Antwoord teruggehaald; de tekst staat weer in het antwoordvak.",
            "Réponse reprise ; le texte est de retour dans la zone de réponse.",
            "Reply taken back; its text is back in the reply box.",
            "Antwort zurückgeholt; der Text steht wieder im Antwortfeld.",
        ],
    ),
    (
        "done_merged",
        [
            "Tickets samengevoegd.",
            "Tickets fusionnés.",
            "Tickets merged.",
            "Tickets zusammengeführt.",
        ],
    ),
    (
        "done_unmerged",
        [
            "Samenvoeging ongedaan gemaakt.",
            "Fusion annulée.",
            "Merge undone.",
            "Zusammenführung rückgängig gemacht.",
        ],
    ),
    (
        "merged_into",
        [
            "Samengevoegd met",
            "Fusionné dans",
            "Merged into",
            "Zusammengeführt mit",
        ],
    ),
    (
        "undo_merge",
        [
            "Samenvoeging ongedaan maken",
            "Annuler la fusion",
            "Undo the merge",
            "Zusammenführung rückgängig machen",
        ],
    ),
    (
        "merged_from",
        [
            "Hierin samengevoegd",
            "Fusionnés ici",
            "Merged into this one",
            "Hierin zusammengeführt",
        ],
    ),
    (
        "held_reply",
        [
            "Uw antwoord vertrekt om",
            "Votre réponse part à",
            "Your reply goes out at",
            "Ihre Antwort geht um",
        ],
    ),
    (
        "undo_send",
        [
            "Verzenden ongedaan maken",
            "Annuler l’envoi",
            "Undo send",
            "Senden rückgängig machen",
        ],
    ),
    (
        "undo_window",
        [
            "Ongedaan maken kan gedurende",
            "Annulation possible pendant",
            "Can be undone for",
            "Rückgängig machen möglich für",
        ],
    ),
    (
        "draft_saved",
        [
            "Concept bewaard",
            "Brouillon enregistré",
            "Draft saved",
            "Entwurf gespeichert",
        ],
    ),
    (
        "draft_not_saved",
        [
            "Concept niet bewaard; nieuwe poging bij de volgende wijziging",
            "Brouillon non enregistré ; nouvel essai à la prochaine modification",
            "Draft not saved; trying again at the next change",
            "Entwurf nicht gespeichert; neuer Versuch bei der nächsten Änderung",
        ],
    ),
    (
        "draft_restored",
        [
            "Bewaard concept",
            "Brouillon enregistré",
            "Saved draft",
            "Gespeicherter Entwurf",
        ],
    ),
    (
        "resolve",
        [
            "Opgelost",
            "Résolu",
            "Resolve",
            "Gelöst",
        ],
    ),
    (
        "merge",
        [
            "Samenvoegen",
            "Fusionner",
            "Merge",
            "Zusammenführen",
        ],
    ),
    (
        "merge_into",
        [
            "Samenvoegen met",
            "Fusionner dans",
            "Merge into",
            "Zusammenführen mit",
        ],
    ),
    (
        "merged_thread_moved",
        [
            "De berichten van dit ticket staan nu op",
            "Les messages de ce ticket sont désormais sur",
            "This ticket's messages are now on",
            "Die Nachrichten dieses Tickets stehen jetzt bei",
        ],
    ),
    (
        "merge_help",
        [
            "De berichten van dit ticket gaan naar het gekozen ticket; dit ticket wordt gesloten. Ongedaan maken kan.",
            "Les messages de ce ticket passent dans le ticket choisi ; celui-ci est fermé. La fusion peut être annulée.",
            "This ticket’s messages move to the chosen ticket, and this one is closed. It can be undone.",
            "Die Nachrichten dieses Tickets gehen in das gewählte Ticket; dieses wird geschlossen. Rückgängig machen ist möglich.",
        ],
    ),
    // The SLA clock: due times, the countdown and the "due soon" view.
    (
        "view_due_soon",
        [
            "Bijna te laat / te laat",
            "Bientôt dû / en retard",
            "Due soon / overdue",
            "Bald fällig / überfällig",
        ],
    ),
    (
        "view_overdue",
        ["Te laat", "En retard", "Overdue", "Überfällig"],
    ),
    ("sla", ["SLA", "SLA", "SLA", "SLA"]),
    ("sla_tier", ["Niveau", "Niveau", "Tier", "Stufe"]),
    (
        "sla_first_response",
        [
            "Eerste antwoord",
            "Première réponse",
            "First response",
            "Erste Antwort",
        ],
    ),
    (
        "sla_resolution",
        ["Oplossing", "Résolution", "Resolution", "Lösung"],
    ),
    ("sla_due", ["tegen", "pour le", "due", "fällig"]),
    (
        "sla_answered",
        ["beantwoord op", "répondu le", "answered", "beantwortet am"],
    ),
    (
        "sla_paused",
        [
            "De klok staat stil sinds",
            "L'horloge est arrêtée depuis",
            "The clock stands still since",
            "Die Uhr steht still seit",
        ],
    ),
    ("sla_late", ["te laat", "en retard", "late", "verspätet"]),
    ("sla_in", ["nog {}", "dans {}", "in {}", "in {}"]),
    (
        "sla_overdue_by",
        [
            "{} te laat",
            "en retard de {}",
            "{} overdue",
            "{} überfällig",
        ],
    ),
    ("col_due", ["Tegen", "Échéance", "Due", "Fällig"]),
    (
        "sla_default",
        ["standaard", "par défaut", "default", "Standard"],
    ),
    (
        "sla_business_hours",
        [
            "werkuren",
            "heures ouvrables",
            "business hours",
            "Arbeitsstunden",
        ],
    ),
    // Live updates and collision detection.
    (
        "live_also_here",
        [
            "Ook op dit ticket:",
            "Aussi sur ce ticket :",
            "Also on this ticket:",
            "Auch auf diesem Ticket:",
        ],
    ),
    (
        "live_writing",
        [
            "schrijft een antwoord",
            "rédige une réponse",
            "writing a reply",
            "schreibt eine Antwort",
        ],
    ),
    (
        "live_inbound",
        [
            "Nieuwe mail van de klant",
            "Nouveau mail du client",
            "New mail from the customer",
            "Neue Mail vom Kunden",
        ],
    ),
    (
        "live_reply",
        [
            "Antwoord verstuurd door",
            "Réponse envoyée par",
            "Reply sent by",
            "Antwort gesendet von",
        ],
    ),
    ("live_note", ["Notitie van", "Note de", "Note by", "Notiz von"]),
    (
        "live_changed",
        [
            "Ticket gewijzigd",
            "Ticket modifié",
            "Ticket changed",
            "Ticket geändert",
        ],
    ),
    ("live_show", ["Tonen", "Afficher", "Show", "Anzeigen"]),
    (
        "live_reload",
        [
            "Pagina herladen",
            "Recharger la page",
            "Reload the page",
            "Seite neu laden",
        ],
    ),
    (
        "live_ended",
        [
            "Live bijwerken gestopt: meld u opnieuw aan.",
            "Mises à jour en direct arrêtées : reconnectez-vous.",
            "Live updates stopped: log in again.",
            "Live-Aktualisierung beendet: bitte neu anmelden.",
        ],
    ),
    (
        "live_new_tickets",
        [
            "Nieuwe tickets: naar de eerste pagina",
            "Nouveaux tickets : aller à la première page",
            "New tickets: go to the first page",
            "Neue Tickets: zur ersten Seite",
        ],
    ),
    (
        "collision_title",
        [
            "Er kwam iets nieuws binnen terwijl u schreef",
            "Du nouveau est arrivé pendant que vous écriviez",
            "Something new arrived while you were writing",
            "Während Sie schrieben, kam etwas Neues",
        ],
    ),
    (
        "collision_explain",
        [
            "Lees het eerst. Uw antwoord is nog niet verstuurd; pas het zo nodig aan.",
            "Lisez-le d'abord. Votre réponse n'est pas encore envoyée ; adaptez-la si besoin.",
            "Read it first. Your reply has not been sent yet; change it if needed.",
            "Lesen Sie es zuerst. Ihre Antwort ist noch nicht gesendet; passen Sie sie bei Bedarf an.",
        ],
    ),
    (
        "collision_send_anyway",
        [
            "Toch versturen",
            "Envoyer quand même",
            "Send anyway",
            "Trotzdem senden",
        ],
    ),
    (
        "collision_back",
        [
            "Terug naar het ticket (de tekst blijft als concept)",
            "Retour au ticket (le texte reste en brouillon)",
            "Back to the ticket (the text stays as a draft)",
            "Zurück zum Ticket (der Text bleibt als Entwurf)",
        ],
    ),
    // Search: where the search box's text was found on a ticket.
    (
        "found_in_number",
        [
            "Op ticketnummer",
            "Par numéro de ticket",
            "By ticket number",
            "Nach Ticketnummer",
        ],
    ),
    (
        "found_in_customer",
        ["Op klant", "Par client", "By customer", "Nach Kunde"],
    ),
    (
        "found_in_sender",
        [
            "Op afzender",
            "Par expéditeur",
            "By sender",
            "Nach Absender",
        ],
    ),
    (
        "found_in_subject",
        [
            "In het onderwerp",
            "Dans l'objet",
            "In the subject",
            "Im Betreff",
        ],
    ),
    (
        "found_in_inbound",
        ["In de mail", "Dans le mail", "In the mail", "In der Mail"],
    ),
    (
        "found_in_reply",
        [
            "In een antwoord",
            "Dans une réponse",
            "In a reply",
            "In einer Antwort",
        ],
    ),
    (
        "found_in_note",
        [
            "In een interne notitie",
            "Dans une note interne",
            "In an internal note",
            "In einer internen Notiz",
        ],
    ),
];

/// The index of a language in [`MESSAGES`]' arrays.
fn index(l: Language) -> usize {
    match l {
        Language::Nl => 0,
        Language::Fr => 1,
        Language::En => 2,
        Language::De => 3,
    }
}

/// Every message in one language, for templates (`t.key`).
pub fn catalogue(l: Language) -> std::collections::BTreeMap<&'static str, &'static str> {
    MESSAGES.iter().map(|(k, v)| (*k, v[index(l)])).collect()
}

/// One message; the key itself when unknown.
pub fn text(l: Language, key: &str) -> &str {
    MESSAGES
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v[index(l)])
        .unwrap_or(key)
}

/// The first of the desk's languages in an `Accept-Language` header, by weight.
pub fn from_accept_language(header: &str) -> Option<Language> {
    let mut choices: Vec<(f32, usize, Language)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim();
            let primary = tag.split('-').next()?;
            let weight = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((weight, i, Language::parse(primary)?))
        })
        .filter(|(w, _, _)| *w > 0.0)
        .collect();
    choices.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    choices.first().map(|c| c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_exists_in_all_four_languages_once() {
        let mut keys: Vec<&str> = MESSAGES.iter().map(|(k, _)| *k).collect();
        for (key, texts) in MESSAGES {
            for (i, t) in texts.iter().enumerate() {
                assert!(!t.trim().is_empty(), "{key} is empty in language #{i}");
            }
        }
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is listed twice");
        for l in Language::ALL {
            assert_eq!(catalogue(l).len(), n);
        }
        assert_eq!(text(Language::De, "logout"), "Abmelden");
    }

    #[test]
    fn the_browser_language_is_the_default() {
        assert_eq!(
            from_accept_language("fr-BE,fr;q=0.9,en;q=0.8"),
            Some(Language::Fr)
        );
        assert_eq!(
            from_accept_language("es, de;q=0.5, nl;q=0.7"),
            Some(Language::Nl)
        );
        assert_eq!(from_accept_language("en-GB"), Some(Language::En));
        assert_eq!(from_accept_language("es, it"), None);
        assert_eq!(from_accept_language("de;q=0, en;q=0.1"), Some(Language::En));
    }
}
