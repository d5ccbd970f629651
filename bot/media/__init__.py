"""ktn-bot's own copies of the files people send: the media store.

Every photo, video, voice note and document that a report, a draft or a broadcast keeps is
downloaded once, on whichever channel it came, and named by the SHA-256 of its bytes
(``store``: a folder under ``data_dir/media`` or an S3-compatible bucket, ``s3``). ``library``
keeps the database's record of each file and deletes what nothing needs any more; ``intake`` is
the channels' download step with the limits per kind; ``links`` signs the short-lived URLs Twilio
fetches what the bot sends on WhatsApp from. ``library.make_library`` builds it from the settings.
"""
