/*
 * mks_keys.c — X keysyms to PC set-1 scancodes (US layout), for VNC clients
 * that send plain RFB key events instead of QEMU's extended (scancode)
 * events.  Shifted characters map to their key: the client sends the Shift
 * press itself.
 */
#include "mks_int.h"

static const char ascii_row_keys[] =
	"1234567890-=" /* 0x02.. */;

uint32_t mks_keysym_to_scancode(uint32_t ks)
{
	static const struct { uint32_t ks, sc; } special[] = {
		{ 0xff08, 0x0E }, { 0xff09, 0x0F }, { 0xfe20, 0x0F }, { 0xff0d, 0x1C },
		{ 0xff1b, 0x01 }, { 0xffff, 0xE053 }, { 0xff50, 0xE047 }, { 0xff51, 0xE04B },
		{ 0xff52, 0xE048 }, { 0xff53, 0xE04D }, { 0xff54, 0xE050 }, { 0xff55, 0xE049 },
		{ 0xff56, 0xE051 }, { 0xff57, 0xE04F }, { 0xff63, 0xE052 }, { 0xffe1, 0x2A },
		{ 0xffe2, 0x36 }, { 0xffe3, 0x1D }, { 0xffe4, 0xE01D }, { 0xffe5, 0x3A },
		{ 0xffe7, 0x38 }, { 0xffe8, 0xE038 }, { 0xffe9, 0x38 }, { 0xffea, 0xE038 },
		{ 0xfe03, 0xE038 }, { 0xffeb, 0xE05B }, { 0xffec, 0xE05C }, { 0xff67, 0xE05D },
		{ 0xff7f, 0x45 }, { 0xff14, 0x46 }, { 0xff61, 0xE037 }, { 0xff8d, 0xE01C },
		{ 0xffaa, 0x37 }, { 0xffab, 0x4E }, { 0xffad, 0x4A }, { 0xffae, 0x53 },
		{ 0xffaf, 0xE035 }, { 0xffb7, 0x47 }, { 0xffb8, 0x48 }, { 0xffb9, 0x49 },
		{ 0xffb4, 0x4B }, { 0xffb5, 0x4C }, { 0xffb6, 0x4D }, { 0xffb1, 0x4F },
		{ 0xffb2, 0x50 }, { 0xffb3, 0x51 }, { 0xffb0, 0x52 }, { 0xff95, 0x47 },
		{ 0xff97, 0x48 }, { 0xff9a, 0x49 }, { 0xff96, 0x4B }, { 0xff98, 0x4D },
		{ 0xff9c, 0x4F }, { 0xff99, 0x50 }, { 0xff9b, 0x51 }, { 0xff9e, 0x52 },
		{ 0xff9f, 0x53 }, { 0xffc8, 0x57 }, { 0xffc9, 0x58 },
	};
	/* Printable ASCII, unshifted and shifted forms of the same key. */
	static const char *const rows[] = {
		"qwertyuiop[]", "asdfghjkl;'`", "\\zxcvbnm,./",
		"QWERTYUIOP{}", "ASDFGHJKL:\"~", "|ZXCVBNM<>?",
	};
	static const uint8_t row_base[] = { 0x10, 0x1E, 0x2B, 0x10, 0x1E, 0x2B };
	static const char shifted_digits[] = "!@#$%^&*()_+";

	if (ks == ' ')
		return 0x39;
	if (ks > ' ' && ks < 0x7f) {
		for (unsigned i = 0; ascii_row_keys[i]; i++)
			if ((uint32_t)(unsigned char)ascii_row_keys[i] == ks ||
			    (uint32_t)(unsigned char)shifted_digits[i] == ks)
				return 0x02 + i;
		for (unsigned r = 0; r < 6; r++)
			for (unsigned i = 0; rows[r][i]; i++)
				if ((uint32_t)(unsigned char)rows[r][i] == ks)
					return row_base[r] + i;
		return 0;
	}
	if (ks >= 0xffbe && ks <= 0xffc7)   /* F1..F10 */
		return 0x3B + (ks - 0xffbe);
	for (unsigned i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (special[i].ks == ks)
			return special[i].sc;
	return 0;
}

uint32_t mks_qemu_keycode_to_scancode(uint32_t keycode)
{
	/* QEMU's numbering: E0-prefixed keys have bit 7 set (0x9D: right Ctrl). */
	if (!keycode || keycode > 0xFF)
		return 0;
	if (keycode & 0x80)
		return 0xE000u | (keycode & 0x7F);
	return keycode;
}
