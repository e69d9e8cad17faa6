"""DICOMweb (QIDO-RS, WADO-RS) for one share, opened by a token its verified recipient made.

The recipient's own software (Weasis, OsiriX, Orthanc, a PACS) reads exactly what the share
covers, through the same permission layer (portal.access.Scope) as the web pages, with every
use audited. The token travels in the Authorization header (Bearer, or Basic with any user
name), never in a path, so it stays out of access logs.
"""
