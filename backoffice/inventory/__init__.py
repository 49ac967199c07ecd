"""Unit lifecycle and inventory: stock locations, where each unit is, stock moves, spare parts."""
