"""The record of processing (UU PDP No. 27/2022, art. 31): what personal data ktn-bot keeps, why,
on what legal basis, who can see it, where and for how long, written from this deployment's
configuration (``ktn-bot pdp record``) so that it never disagrees with what the bot does.

Bahasa Indonesia by default (the record is for the Indonesian controller and the Lembaga PDP),
English with ``--lang en``. The periods are ``[retention]``'s; the places follow ``[media]`` and
the channels enabled (the processors: Telegram, Twilio and WhatsApp).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings

LANGS = ("id", "en")

# Legal bases of UU PDP art. 20(2): (a) consent, (c) a legal obligation, (e) a task in the
# public interest or of public service.
TEXTS: dict[str, dict[str, str]] = {
    "id": {
        "title": "Catatan pemrosesan data pribadi (UU PDP No. 27/2022 Pasal 31) — ktn-bot",
        "generated": "Dibuat dari konfigurasi: {config}",
        "data": "Data",
        "purpose": "Tujuan",
        "basis": "Dasar hukum",
        "who": "Siapa yang dapat melihat",
        "where": "Tempat penyimpanan",
        "how_long": "Masa simpan",
        "days": "{days} hari",
        "forever": "tidak dihapus otomatis (sampai /hapusdata)",
        "consent": "persetujuan (Pasal 20 ayat 2 huruf a), diminta sebelum data pertama disimpan",
        "public_task": "pelaksanaan tugas untuk kepentingan umum / pelayanan publik "
        "(Pasal 20 ayat 2 huruf e)",
        "legal": "kewajiban hukum pengendali (Pasal 20 ayat 2 huruf c)",
        "db": "basis data ktn-bot ({db})",
        "sqlite": "SQLite, berkas di server",
        "postgresql": "PostgreSQL",
        "media_local": "penyimpanan media di server ({path})",
        "media_s3": "bucket S3 '{bucket}' ({endpoint})",
        "processors": "Pemroses data (prosesor): {names}",
        "telegram": "Telegram (Telegram Messenger Inc.; pesan melewati server Telegram)",
        "whatsapp": "Twilio Inc. dan WhatsApp/Meta (pesan WhatsApp melewati Twilio)",
        "none": "tidak ada kanal aktif (hanya sandbox)",
        "rights": "Hak subjek data: /dataku (salinan data), /hapusdata (penghapusan, dijawab "
        "dalam 3 x 24 jam), /berhenti (berhenti menerima pengumuman).",
        "breach": "Kegagalan pelindungan data: docs/breach.md (pemberitahuan tertulis dalam "
        "3 x 24 jam, Pasal 46).",
        # activities
        "contacts": "Kontak: ID chat Telegram atau nomor WhatsApp, nama tampilan, nomor HP "
        "(jika dibagikan), kelurahan/desa, bahasa, peran, waktu persetujuan",
        "contacts_purpose": "menghubungi warga dan petugas: kabar laporan, pengumuman, pengingat",
        "contacts_who": "petugas dan koordinator wilayahnya (nama pelapor tidak anonim); admin",
        "reports": "Laporan: uraian, lokasi, alamat, kategori, pelapor, pengikut, catatan "
        "penyelesaian; data dari sistem Open311 (nama, email, HP)",
        "reports_purpose": "menangani kejadian yang dilaporkan warga dan mengabarkan hasilnya",
        "reports_who": "petugas dan koordinator wilayah laporan dan wilayah di atasnya (grup "
        "petugas, dasbor, ekspor); identitas pelapor anonim tidak pernah ditampilkan",
        "reports_long": "{days} setelah laporan ditutup: pelapor, pengikut, uraian, alamat, "
        "catatan dan titik persis dihapus; kategori, wilayah, waktu dan status tetap untuk "
        "statistik",
        "media": "Foto, pesan suara dan dokumen laporan (dan foto bukti penyelesaian)",
        "media_purpose": "bukti kejadian dan penyelesaiannya bagi petugas",
        "outbox": "Pesan yang dikirim bot (teks, tombol, berkas)",
        "outbox_purpose": "mengirim pesan tanpa kehilangan; mencatat status pengiriman",
        "outbox_who": "admin (pesan gagal: ktn-bot outbox failed, tanpa isi pesan)",
        "outbox_long": "teks {days} setelah dikirim; catatan pengiriman tanpa teks tetap",
        "conversations": "Percakapan yang sedang berjalan dan laporan yang belum selesai diisi",
        "conversations_purpose": "melanjutkan percakapan dengan warga",
        "conversations_who": "tidak ada (hanya bot)",
        "conversations_long": "{days} setelah terakhir aktif",
        "events": "Riwayat laporan: perubahan status, siapa, kapan, catatan petugas",
        "events_purpose": "akuntabilitas penanganan laporan",
        "events_long": "catatan {days}; riwayat tanpa catatan tetap",
        "patrol": "Tim ronda: nama anggota, konfirmasi hadir",
        "patrol_purpose": "mengatur jadwal ronda (siskamling)",
        "patrol_who": "koordinator wilayah, anggota tim",
        "desk": "Sesi dasbor dan tautan masuk (hanya hash token)",
        "desk_purpose": "keamanan akses dasbor petugas",
        "desk_who": "admin",
        "inbound": "ID pesan masuk yang sudah ditangani (tanpa isi)",
        "inbound_purpose": "menjawab setiap pesan sekali walau dikirim ulang oleh kanal",
        "access": "Log akses: siapa membaca laporan/ekspor data pribadi, kapan (tanpa isinya)",
        "access_purpose": "akuntabilitas akses ke data pribadi (Pasal 31, 35)",
        "access_who": "admin (ktn-bot pdp access-log)",
        "staff_who": "admin",
    },
    "en": {
        "title": "Record of personal data processing (UU PDP No. 27/2022 art. 31) — ktn-bot",
        "generated": "Generated from the configuration: {config}",
        "data": "Data",
        "purpose": "Purpose",
        "basis": "Legal basis",
        "who": "Who can see it",
        "where": "Where it is kept",
        "how_long": "Kept for",
        "days": "{days} days",
        "forever": "not deleted automatically (until /hapusdata)",
        "consent": "consent (art. 20(2)(a)), asked before any data is first kept",
        "public_task": "a task in the public interest / public service (art. 20(2)(e))",
        "legal": "the controller's legal obligation (art. 20(2)(c))",
        "db": "ktn-bot's database ({db})",
        "sqlite": "SQLite, a file on the server",
        "postgresql": "PostgreSQL",
        "media_local": "the media store on the server ({path})",
        "media_s3": "S3 bucket '{bucket}' ({endpoint})",
        "processors": "Processors: {names}",
        "telegram": "Telegram (Telegram Messenger Inc.; messages pass Telegram's servers)",
        "whatsapp": "Twilio Inc. and WhatsApp/Meta (WhatsApp messages pass through Twilio)",
        "none": "no channel enabled (sandbox only)",
        "rights": "Data subjects' rights: /mydata (a copy), /hapusdata (erasure, answered "
        "within 3 x 24 hours), /berhenti (stop announcements).",
        "breach": "Personal data breach: docs/breach.md (written notice within 3 x 24 hours, "
        "art. 46).",
        "contacts": "Contacts: Telegram chat id or WhatsApp number, display name, phone number "
        "(if shared), kelurahan/desa, language, role, time of consent",
        "contacts_purpose": "reaching residents and officers: news of reports, announcements, "
        "reminders",
        "contacts_who": "officers and coordinators of their area (a reporter's name when not "
        "anonymous); admins",
        "reports": "Reports: description, place, address, category, reporter, followers, "
        "resolution notes; what an Open311 system sent (name, email, phone)",
        "reports_purpose": "dealing with incidents residents report and telling them the outcome",
        "reports_who": "officers and coordinators of the report's area and the areas above "
        "(officers' groups, the desk, exports); an anonymous reporter is never shown",
        "reports_long": "{days} after the report is closed: reporter, followers, description, "
        "address, notes and exact place are removed; category, area, times and status stay "
        "for statistics",
        "media": "Reports' photos, voice notes and documents (and officers' closure photos)",
        "media_purpose": "evidence of the incident and of its resolution for the officers",
        "outbox": "Messages the bot sends (texts, buttons, files)",
        "outbox_purpose": "sending without loss; recording delivery status",
        "outbox_who": "admins (failed messages: ktn-bot outbox failed, without their text)",
        "outbox_long": "texts {days} after sending; the delivery record without text stays",
        "conversations": "Conversations in progress and reports not yet finished",
        "conversations_purpose": "continuing a conversation with a resident",
        "conversations_who": "nobody (the bot only)",
        "conversations_long": "{days} after the last activity",
        "events": "Reports' trails: status changes, who, when, officers' notes",
        "events_purpose": "accountability of how reports are handled",
        "events_long": "notes {days}; the trail without notes stays",
        "patrol": "Patrol (ronda) teams: members' names, attendance",
        "patrol_purpose": "organising the patrol rota (siskamling)",
        "patrol_who": "the area's coordinators, the team's members",
        "desk": "Desk sessions and sign-in links (token hashes only)",
        "desk_purpose": "securing access to the officers' desk",
        "desk_who": "admins",
        "inbound": "Ids of inbound messages handled (no content)",
        "inbound_purpose": "answering each message once when a channel delivers it again",
        "access": "Access log: who read reports or exports of personal data, when (not the data)",
        "access_purpose": "accountability of access to personal data (art. 31, 35)",
        "access_who": "admins (ktn-bot pdp access-log)",
        "staff_who": "admins",
    },
}


@dataclass(frozen=True)
class Activity:
    """One processing activity of the record."""

    data: str
    purpose: str
    basis: str
    who: str
    where: str
    how_long: str


def _period(t: dict[str, str], days: int, template: str | None = None) -> str:
    if days <= 0:
        return t["forever"]
    span = t["days"].format(days=days)
    return template.format(days=span) if template else span


def _places(settings: Settings, t: dict[str, str]) -> tuple[str, str]:
    """Where the database and the media store are."""
    url = settings.database.url
    db = t["db"].format(db=t["sqlite"] if url.startswith("sqlite") else t["postgresql"])
    media = settings.media
    if media.backend == "s3":
        endpoint = media.endpoint_url or f"AWS S3 {media.region or ''}".strip()
        store = t["media_s3"].format(bucket=media.bucket, endpoint=endpoint)
    else:
        store = t["media_local"].format(path=settings.data_dir / "media")
    return db, store


def processors(settings: Settings, lang: str) -> list[str]:
    """The channels enabled, as the processors they make."""
    t = TEXTS[lang]
    names = []
    if settings.telegram_token is not None or settings.telegram.bots:
        names.append(t["telegram"])
    if settings.whatsapp.enabled:
        names.append(t["whatsapp"])
    return names


def activities(settings: Settings, lang: str) -> list[Activity]:
    """The record's activities for this configuration."""
    t = TEXTS[lang]
    r = settings.retention
    db, store = _places(settings, t)
    resident = f"{t['consent']}; {t['public_task']}"
    return [
        Activity(
            t["contacts"], t["contacts_purpose"], resident, t["contacts_who"], db, t["forever"]
        ),
        Activity(
            t["reports"],
            t["reports_purpose"],
            resident,
            t["reports_who"],
            db,
            _period(t, r.closed_report_personal_days, t["reports_long"]),
        ),
        Activity(
            t["media"],
            t["media_purpose"],
            resident,
            t["reports_who"],
            f"{store}; {db}",
            _period(t, r.media_days),
        ),
        Activity(
            t["outbox"],
            t["outbox_purpose"],
            resident,
            t["outbox_who"],
            db,
            _period(t, r.outbox_text_days, t["outbox_long"]),
        ),
        Activity(
            t["conversations"],
            t["conversations_purpose"],
            resident,
            t["conversations_who"],
            db,
            _period(t, r.conversation_days, t["conversations_long"]),
        ),
        Activity(
            t["events"],
            t["events_purpose"],
            t["public_task"],
            t["reports_who"],
            db,
            _period(t, r.report_event_note_days, t["events_long"]),
        ),
        Activity(t["patrol"], t["patrol_purpose"], resident, t["patrol_who"], db, t["forever"]),
        Activity(
            t["desk"],
            t["desk_purpose"],
            t["public_task"],
            t["desk_who"],
            db,
            _period(t, r.desk_session_days),
        ),
        Activity(
            t["inbound"],
            t["inbound_purpose"],
            t["public_task"],
            t["staff_who"],
            db,
            _period(t, r.processed_inbound_days),
        ),
        Activity(
            t["access"],
            t["access_purpose"],
            t["legal"],
            t["access_who"],
            db,
            _period(t, r.access_log_days),
        ),
    ]


def record(settings: Settings, lang: str = "id") -> str:
    """The record of processing as plain text."""
    t = TEXTS[lang]
    config = str(settings.config_path) if settings.config_path else "(defaults)"
    lines = [t["title"], t["generated"].format(config=config), ""]
    for n, act in enumerate(activities(settings, lang), 1):
        lines.append(f"{n}. {act.data}")
        for key, value in (
            ("purpose", act.purpose),
            ("basis", act.basis),
            ("who", act.who),
            ("where", act.where),
            ("how_long", act.how_long),
        ):
            lines.append(f"   {t[key]}: {value}")
        lines.append("")
    lines.append(t["processors"].format(names="; ".join(processors(settings, lang)) or t["none"]))
    lines += ["", t["rights"], t["breach"]]
    return "\n".join(lines) + "\n"
