#!/usr/bin/python3
"""Prints what python-docx and openpyxl read in each document given: text,
tables, headers, hyperlink targets, comments and properties. It fails (exit
1) if a document does not open. The test checks that no customer address is
in the output.

Usage: /usr/bin/python3 read_documents.py FILE...
"""
import sys

import docx
import openpyxl


def read_docx(path):
    d = docx.Document(path)
    for p in d.paragraphs:
        print(p.text)
    for t in d.tables:
        for row in t.rows:
            print("\t".join(c.text for c in row.cells))
    for s in d.sections:
        for p in s.header.paragraphs + s.footer.paragraphs:
            print(p.text)
    cp = d.core_properties
    print("author:", cp.author, "last_modified_by:", cp.last_modified_by, "comments:", cp.comments)
    for rel in d.part.rels.values():
        if rel.is_external:
            print("target:", rel.target_ref)


def read_xlsx(path):
    wb = openpyxl.load_workbook(path)
    print("creator:", wb.properties.creator, "last_modified_by:", wb.properties.lastModifiedBy)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    print(ws.title, c.coordinate, c.value)
                if c.hyperlink is not None:
                    print("target:", c.hyperlink.target)
                if c.comment is not None:
                    print("comment:", c.comment.author, c.comment.text)


def main():
    for path in sys.argv[1:]:
        print("==", path)
        if path.endswith(".docx"):
            read_docx(path)
        elif path.endswith(".xlsx"):
            read_xlsx(path)


if __name__ == "__main__":
    main()
