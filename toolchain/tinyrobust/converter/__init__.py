"""The converter: a Keras model → an integer Program (frontend → IR → passes → ops → lower), the
numpy reference that executes it, and the memory plan of its arena."""
