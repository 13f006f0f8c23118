"""Delivery of signed reports back to the sending hospital: endpoint configurations, the
senders (DICOM C-STORE, FHIR webhook) and the retry schedule."""
