#!/usr/bin/python3
"""Writes the attachment corpus's documents into OUTDIR, each made by a real
producer: python-docx (docx), openpyxl (xlsx), LibreOffice headless (odt and
ods converted from them; odp and pptx from a flat ODF presentation), and
Python's zipfile and tarfile (archives). Every document names the customer
addresses of ADDRESSES in the places issue 17 lists: body text (one split
across formatting runs), hyperlinks and mailto: targets, document properties,
comments, cells, slides, headers.

Usage: /usr/bin/python3 make_documents.py OUTDIR SOFFICE_PROFILE_DIR
       /usr/bin/python3 make_documents.py --large PARAGRAPHS FILE   (the benchmark's text-only docx)
       /usr/bin/python3 make_documents.py --picture PARAGRAPHS FILE (text and a 900 KB picture)
       /usr/bin/python3 make_documents.py --letter PARAGRAPHS FILE  (text only, the customer named
                                                                    at the top and in the signature)
(Debian's python3-docx and python3-openpyxl: test/tools/install-office.sh.)
"""
import io
import os
import subprocess
import sys
import tarfile
import zipfile

import docx
import docx.opc.constants
import docx.oxml.shared
import docx.shared
import openpyxl
import openpyxl.comments

ADDRESSES = ["jane.doe@example.com", "bob.roe@example.org", "carol@example.net", "dave@example.com"]


def hyperlink(paragraph, url, text):
    """python-docx has no hyperlink API: a w:hyperlink with its relationship."""
    part = paragraph.part
    rid = part.relate_to(url, docx.opc.constants.RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = docx.oxml.shared.OxmlElement("w:hyperlink")
    link.set(docx.oxml.shared.qn("r:id"), rid)
    run = docx.oxml.shared.OxmlElement("w:r")
    t = docx.oxml.shared.OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)


def noise_png(size):
    """A PNG of random pixels, about size bytes (it does not compress)."""
    import random
    import struct
    import zlib
    w = 512
    h = size // (w * 3) + 1
    rnd = random.Random(1)
    raw = b"".join(b"\x00" + rnd.randbytes(w * 3) for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def make_docx(path, pad_paragraphs=0, picture=0, every=50):
    """A letter naming the customers at the top; pad_paragraphs of text
    after it name one in every every-th paragraph (0: none, and the
    customer signs the letter at the end instead)."""
    d = docx.Document()
    if picture:
        d.add_picture(io.BytesIO(noise_png(picture)), width=docx.shared.Cm(10))
    d.core_properties.author = "jane.doe@example.com"
    d.core_properties.last_modified_by = "bob.roe@example.org"
    d.core_properties.comments = "reviewed by carol@example.net"
    d.sections[0].header.paragraphs[0].text = "From dave@example.com"
    d.add_heading("Order 1234", level=1)
    p = d.add_paragraph("Contact: ")
    p.add_run("jane.doe")  # the address split by formatting
    p.add_run("@example.com").bold = True
    p.add_run(" for details.")
    p = d.add_paragraph("Or write to ")
    hyperlink(p, "mailto:bob.roe@example.org?subject=Order%201234", "Bob")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Email"
    table.cell(0, 1).text = "carol@example.net"
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
    for i in range(pad_paragraphs):
        p = d.add_paragraph(" ".join(words[(i + k) % len(words)] + str(i * 7 + k) for k in range(30)))
        if every and i % every == 0:
            p.add_run(" customer%d@example.com" % i)
    if not every:
        p = d.add_paragraph("Kind regards, Jane Doe, ")
        p.add_run("jane.doe@example.com").italic = True
    d.save(path)


def make_xlsx(path):
    wb = openpyxl.Workbook()
    wb.properties.creator = "jane.doe@example.com"
    wb.properties.lastModifiedBy = "bob.roe@example.org"
    ws = wb.active
    ws.title = "Contacts"
    ws.append(["Name", "Email"])
    ws.append(["Jane", "jane.doe@example.com"])
    ws.append(["Bob", "write to bob.roe@example.org today"])
    ws["C2"] = "mail"
    ws["C2"].hyperlink = "mailto:carol@example.net"
    ws["A3"].comment = openpyxl.comments.Comment("ask dave@example.com", "dave@example.com")
    wb.create_sheet("Other")["A1"] = "jane.doe@example.com"
    wb.save(path)


FODP = """<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
 xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
 xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
 xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
 xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
 xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
 xmlns:dc="http://purl.org/dc/elements/1.1/"
 office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
 <office:meta><meta:initial-creator>jane.doe@example.com</meta:initial-creator><dc:creator>bob.roe@example.org</dc:creator></office:meta>
 <office:body><office:presentation>
  <draw:page draw:name="page1">
   <draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box>
    <text:p>Customer: jane.doe@example.com</text:p>
    <text:p>Escalate to carol@example.net</text:p>
   </draw:text-box></draw:frame>
  </draw:page>
  <draw:page draw:name="page2">
   <draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm" svg:height="3cm"><draw:text-box>
    <text:p>Copy dave@example.com</text:p>
   </draw:text-box></draw:frame>
  </draw:page>
 </office:presentation></office:body>
</office:document>
"""


def soffice(profile, fmt, outdir, *files):
    subprocess.run(["soffice", "-env:UserInstallation=file://" + profile, "--headless", "--norestore",
                    "--convert-to", fmt, "--outdir", outdir, *files],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def make_archives(out):
    with zipfile.ZipFile(os.path.join(out, "bundle.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("notes.txt", "Customer jane.doe@example.com called; cc bob.roe@example.org.\n")
        z.writestr("contacts.csv", "name,email\nCarol,carol@example.net\n")
        z.writestr("saved/reply.eml", "From: Dave <dave@example.com>\r\nTo: support@company.example\r\n"
                   "Subject: re\r\n\r\nPlease answer dave@example.com\r\n")
        z.write(os.path.join(out, "letter.docx"), "inner/letter.docx")
    buf = io.BytesIO()
    with tarfile.open(os.path.join(out, "logs.tar.gz"), "w:gz") as t:
        for name, body in [("logs/a.log", "login jane.doe@example.com\n"), ("logs/b.html",
                           '<a href="mailto:bob.roe@example.org">Bob</a>\n')]:
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def main():
    if sys.argv[1] == "--large":
        make_docx(sys.argv[3], pad_paragraphs=int(sys.argv[2]))
        return
    if sys.argv[1] == "--letter":
        make_docx(sys.argv[3], pad_paragraphs=int(sys.argv[2]), every=0)
        return
    if sys.argv[1] == "--picture":
        make_docx(sys.argv[3], pad_paragraphs=int(sys.argv[2]), picture=900 << 10)
        return
    out, profile = sys.argv[1], sys.argv[2]
    make_docx(os.path.join(out, "letter.docx"))
    # A longer letter (about 1 MB of document XML, several deflate blocks):
    # its changes at the top and in the signature are spliced into the
    # blocks between them, which are kept as they were.
    make_docx(os.path.join(out, "long-letter.docx"), pad_paragraphs=3000, every=0)
    make_xlsx(os.path.join(out, "contacts.xlsx"))
    fodp = os.path.join(out, "slides.fodp")
    with open(fodp, "w") as f:
        f.write(FODP)
    soffice(profile, "odt", out, os.path.join(out, "letter.docx"))
    soffice(profile, "ods", out, os.path.join(out, "contacts.xlsx"))
    soffice(profile, "odp", out, fodp)
    soffice(profile, "pptx", out, fodp)
    os.remove(fodp)
    make_archives(out)


if __name__ == "__main__":
    main()
